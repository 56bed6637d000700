"""The README's promises: its API example runs as written, its commands are what CI runs."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_api_example_runs_as_written(tmp_path):
    section = README.split("## The API in ten lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) == 10
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.match(r"loss \d+\.\d{4}, cell state at step 10: \[", out.stdout)


def test_readme_starts_with_the_two_commands():
    lines = README.splitlines()
    block = lines[lines.index("```bash") + 1: lines.index("```bash") + 5]
    assert block[0].startswith("# install and run the main job")
    assert "lstmlab reproduce gers2002" in block[1]
    assert block[2] == "# install and run the tests"
    assert "pytest" in block[3]


def test_torch_example_runs_as_written(tmp_path):
    """The PyTorch and ONNX section's example: the module, a state dict from nn.LSTM, the export."""
    section = README.split("## PyTorch and ONNX", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code + "\nprint(out.shape, h_n.shape)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "torch.Size([8, 20, 64]) torch.Size([2, 8, 64])"
    assert (tmp_path / "peephole.onnx").stat().st_size > 0
