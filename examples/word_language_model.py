"""A word-level language model in PyTorch, with torch.nn.LSTM or lstmlab.torch.LSTM side by side.

The shape of pytorch/examples' ``word_language_model``: an embedding, a stack of LSTM layers with
dropout between them, a linear decoder (optionally tied to the embedding), truncated BPTT over
chunks of ``--bptt`` words with the state carried and detached between chunks, plain SGD with
gradient-norm clipping and the learning rate divided by 4 whenever the validation loss does not
improve. The corpus is the Python language reference that CPython ships
(``pydoc_data/topics.py``, about 65k words): every line is split on white space and ends with
``<eos>``, the first 80% of the words train, the next 10% validate, the last 10% test; words seen
fewer than twice in training are ``<unk>``.

With ``--impl both`` (the default) the two models start from the same weights (lstmlab's loads
nn.LSTM's state dict; a variant's own parameters, e.g. peepholes, come from a seeded generator),
see the same batches and draw the same dropout masks (both draw them from torch's generator in the
same order, the masks between the LSTM layers included), and the script prints the validation
perplexity of each after every epoch and their ratio. The two compute the same function but round
differently (float32: ~1e-7 per operation); SGD at a learning rate of 20 amplifies such
differences until, after some hundred updates, the two runs follow different (equally good)
trajectories, and one learning-rate cut may fall an epoch apart. ``--dtype float64`` keeps them
together far longer.

    python examples/word_language_model.py                       # 2x200 LSTM, 6 epochs
    python examples/word_language_model.py --variant peephole --impl lstmlab
    python examples/word_language_model.py --quick               # a small smoke run
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time

import torch
from torch import nn

import lstmlab.torch as lt


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def corpus_words() -> list[str]:
    """The words of CPython's language reference, one ``<eos>`` per line."""
    from pydoc_data.topics import topics
    words = []
    for key in sorted(topics):
        for line in topics[key].splitlines():
            words += line.split() + ["<eos>"]
    return words


def splits(words, min_count=2):
    """(vocabulary, train, valid, test) as int64 tensors of word ids."""
    n = len(words)
    parts = words[:int(0.8 * n)], words[int(0.8 * n):int(0.9 * n)], words[int(0.9 * n):]
    counts = collections.Counter(parts[0])
    vocab = ["<unk>"] + sorted(w for w, c in counts.items() if c >= min_count and w != "<unk>")
    index = {w: i for i, w in enumerate(vocab)}
    return (vocab, *(torch.tensor([index.get(w, 0) for w in p], dtype=torch.int64) for p in parts))


def batchify(ids, bsz):
    """(N,) -> (N // bsz, bsz): bsz contiguous streams side by side, time-major."""
    n = ids.size(0) // bsz
    return ids[:n * bsz].view(bsz, n).t().contiguous()


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

class RNNModel(nn.Module):
    """Embedding -> dropout -> recurrent stack -> dropout -> linear decoder (log-softmax)."""

    def __init__(self, rnn, ntoken, ninp, nhid, dropout, tie):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = rnn
        self.decoder = nn.Linear(nhid, ntoken)
        if tie:
            if nhid != ninp:
                raise ValueError("--tied: needs --nhid equal to --emsize")
            self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not tie:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)       # (T, B, nhid)
        return torch.log_softmax(self.decoder(self.drop(out)), dim=-1), hidden

    def init_hidden(self, bsz):
        r = self.rnn
        z = torch.zeros(r.num_layers, bsz, r.hidden_size, dtype=self.decoder.weight.dtype)
        return (z, z.clone())


def build(args, ntoken, impl):
    torch.manual_seed(args.seed)
    ref = nn.LSTM(args.emsize, args.nhid, args.nlayers, dropout=args.dropout)
    model = RNNModel(ref, ntoken, args.emsize, args.nhid, args.dropout, args.tied)
    if impl == "lstmlab":
        gen = torch.Generator().manual_seed(args.seed + 1)
        ours = lt.LSTM(args.emsize, args.nhid, args.nlayers, dropout=args.dropout,
                       variant=args.variant, backend=args.backend)
        with torch.no_grad():                  # the variant's own parameters: seeded draws
            k = 1.0 / math.sqrt(args.nhid)
            for p in ours.parameters():
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * k - k)
        missing = ours.load_state_dict(ref.state_dict(), strict=False)
        if missing.unexpected_keys:
            raise RuntimeError(f"unexpected parameters {missing.unexpected_keys}")
        model.rnn = ours
    return model.to(getattr(torch, args.dtype))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def evaluate(model, data, args):
    model.eval()
    total, n = 0.0, 0
    hidden = model.init_hidden(data.size(1))
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, args.bptt):
            x, y = data[i:i + args.bptt], data[i + 1:i + 1 + args.bptt]
            x = x[:y.size(0)]
            logp, hidden = model(x, hidden)
            total += nn.functional.nll_loss(logp.view(-1, logp.size(-1)), y.reshape(-1),
                                            reduction="sum").item()
            n += y.numel()
    return total / n


def train(impl, args, data, ntoken, log):
    model = build(args, ntoken, impl)
    train_data, val_data, test_data = data
    lr, best = args.lr, math.inf
    history = []
    torch.manual_seed(args.seed + 2)                           # the same dropout draws per run
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        hidden = model.init_hidden(args.batch_size)
        for b, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
            if args.max_batches and b >= args.max_batches:
                break
            x, y = train_data[i:i + args.bptt], train_data[i + 1:i + 1 + args.bptt]
            x = x[:y.size(0)]
            hidden = tuple(h.detach() for h in hidden)         # truncated BPTT: carried, detached
            model.zero_grad()
            logp, hidden = model(x, hidden)
            loss = nn.functional.nll_loss(logp.view(-1, ntoken), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
        seconds = time.perf_counter() - t0
        val = evaluate(model, val_data, args)
        history.append({"epoch": epoch, "val_ppl": math.exp(val), "lr": lr, "seconds": seconds})
        log(f"{impl:>7} epoch {epoch}: valid ppl {math.exp(val):8.2f}  lr {lr:g}  "
            f"{seconds:.1f} s")
        if val < best:
            best = val
        else:
            lr /= 4.0
    return {"impl": impl, "variant": args.variant if impl == "lstmlab" else "lstm",
            "history": history, "test_ppl": math.exp(evaluate(model, test_data, args))}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--impl", choices=("both", "torch", "lstmlab"), default="both",
                   help="which LSTM: torch.nn.LSTM, lstmlab.torch.LSTM, or both (default)")
    p.add_argument("--variant", default="lstm", help="lstmlab's cell (default lstm)")
    p.add_argument("--backend", choices=lt.BACKENDS, default="auto",
                   help="lstmlab's path: compiled kernels where they run (auto), pure torch, ...")
    p.add_argument("--emsize", type=int, default=200)
    p.add_argument("--nhid", type=int, default=200)
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--lr", type=float, default=20.0)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--tied", action="store_true", help="tie the decoder to the embedding")
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="float64 keeps the two implementations' rounding apart for longer")
    p.add_argument("--max-batches", type=int, default=0, help="cap the batches per epoch (0: all)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 32 units, 1 epoch of 30 batches, no dropout")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.emsize = args.nhid = 32
        args.epochs, args.max_batches, args.dropout = 1, 30, 0.0
    for name in ("emsize", "nhid", "nlayers", "epochs", "batch_size", "bptt"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer")
    if not 0 <= args.dropout < 1:
        p.error("--dropout: expected a probability in [0, 1)")
    if args.tied and args.nhid != args.emsize:
        p.error(f"--tied: needs --nhid equal to --emsize, got {args.nhid} and {args.emsize}")
    try:
        lt.LSTM(1, 1, variant=args.variant)
    except ValueError as e:
        p.error(f"--variant: {e}")
    return args


def main(argv=None):
    args = parse(argv)
    vocab, *ids = splits(corpus_words())
    data = (batchify(ids[0], args.batch_size), batchify(ids[1], 10), batchify(ids[2], 10))
    print(f"corpus: {sum(len(i) for i in ids)} words, vocabulary {len(vocab)}; "
          f"{args.nlayers}x{args.nhid} LSTM, batch {args.batch_size}, bptt {args.bptt}, "
          f"{args.dtype}",
          flush=True)
    impls = ("torch", "lstmlab") if args.impl == "both" else (args.impl,)
    results = [train(impl, args, data, len(vocab), lambda s: print(s, flush=True))
               for impl in impls]
    for r in results:
        h = r["history"][-1]
        print(f"{r['impl']:>7} ({r['variant']}): valid ppl {h['val_ppl']:.2f}, test ppl "
              f"{r['test_ppl']:.2f}, {sum(e['seconds'] for e in r['history']) / len(r['history']):.1f} s/epoch")
    if len(results) == 2:
        ratio = results[1]["history"][-1]["val_ppl"] / results[0]["history"][-1]["val_ppl"]
        print(f"lstmlab / torch validation perplexity: {ratio:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
