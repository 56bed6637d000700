"""Encoder-decoder networks (Sutskever et al. 2014) with global attention (Bahdanau et al. 2015,
Luong et al. 2015), built from the engine's layers; forward and hand-derived backward side by side.

Shapes: S source steps, T target steps, B sequences; tokens are integer ids, time-major (S, B) and
(T, B); E embedding size, H the hidden size of both stacks, Hy = dirs * H the encoder's output::

    encoder   e = E_src[x]                                              (S, B, E)
              Y, s_n = enc(e, src_lengths)       any cell, L layers, 1 or 2 directions; Y (S, B, Hy)
    bridge    "dense": h_0^l = tanh(W_h^l [h_n^l; h_n^l,rev] + b_h^l),  c_0^l = W_c^l [c_n^l; ..] + b_c^l
              "copy":  the decoder starts from s_n (one direction only)
              "zero":  from zeros
    decoder   u_0 = BOS; u_t = y_{t-1} with probability teacher_forcing (per step and sequence),
              else the model's own choice argmax(logits_{t-1})
              d_t = [E_tgt[u_t]; a_{t-1}]  (input feeding, a_{-1} = 0; without attention E_tgt[u_t])
              h_t, s_t = dec(d_t, s_{t-1})      one step of the same engine layer, L layers
    attention score_j = h_t . Y_j                       "dot" (Luong)
                      = h_t . (W_a Y_j)                 "general" (Luong)
                      = v . tanh(W_q h_t + U_k Y_j)     "bahdanau" (additive)
              alpha_t = softmax over the source steps j < src_length of score (zero elsewhere)
              ctx_t = sum_j alpha_tj Y_j                                 (B, Hy)
              a_t = tanh(W_o [ctx_t; h_t] + b_o)        the attentional vector (Luong eq. 5)
              without attention ("none"): a_t = h_t, the fixed-size bottleneck
    readout   logits_t = W_y a_t + b_y;  loss (``loss``) = mean over the counted (t, b) of
              -log softmax(logits_t)[y_t]

The backward pass runs the steps in reverse: the readout and the attention by hand (below), each
decoder step through the engine layer's own BPTT with the state gradient carried from step t + 1
and the input-feeding gradient into a_{t-1}; then the bridge, and the encoder's BPTT with the
gradient that every step's attention sent into Y.

Deviation, stated: the additive score is used in Luong's architecture (the query is the current
h_t and the context enters the attentional vector), as OpenNMT's "mlp" attention does; Bahdanau
et al. query the previous state s_{t-1} and feed the context into the recurrent cell.
"""
from __future__ import annotations

import numpy as np

from .dense import Dense, Embedding
from .layers import GRU, LSTM, RNN
from .losses import softmax_cross_entropy
from .validate import check_array, check_dtype, check_positive_int

__all__ = ["Seq2Seq", "ATTENTIONS", "BRIDGES", "PAD", "BOS", "EOS"]

ATTENTIONS = ("none", "dot", "general", "bahdanau")
BRIDGES = ("dense", "copy", "zero")
PAD, BOS, EOS = 0, 1, 2          # the reserved ids of both vocabularies


def _sigma_rows(z, mask):
    """Softmax over axis 0 of z (S, B) where mask (S, B) is True; 0 elsewhere."""
    z = np.where(mask, z, -np.inf)
    z = z - z.max(axis=0, keepdims=True)
    e = np.where(mask, np.exp(z), 0.0)
    return e / e.sum(axis=0, keepdims=True)


class Seq2Seq:
    """``Seq2Seq(src_vocab, tgt_vocab, embed=32, hidden=64, layers=1, cell="lstm",
    attention="general", bidirectional=False, bridge="dense", dtype=np.float64, seed=0)``.

    ``cell`` is any LSTM preset (or a CellSpec), ``"gru"`` or ``"rnn"``. Ids 0, 1, 2 of both
    vocabularies are PAD, BOS and EOS. ``params`` is one dict with prefixed names (``src_embed``,
    ``tgt_embed``, ``enc.*`` and ``dec.*`` in PyTorch's names, ``bridge_h_l{l}``/``bridge_c_l{l}``,
    ``attn.*``, ``out.*``) holding the components' own arrays.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, embed: int = 32, hidden: int = 64,
                 layers: int = 1, cell="lstm", attention: str = "general",
                 bidirectional: bool = False, bridge: str = "dense", dtype=np.float64,
                 seed: int = 0):
        for name, v, lo in (("src_vocab", src_vocab, 4), ("tgt_vocab", tgt_vocab, 4),
                            ("embed", embed, 1), ("hidden", hidden, 1), ("layers", layers, 1)):
            check_positive_int(name, v, lo)
        if attention not in ATTENTIONS:
            raise ValueError(f"attention: expected one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if bridge not in BRIDGES:
            raise ValueError(f"bridge: expected one of {', '.join(BRIDGES)}, got {bridge!r}")
        if bridge == "copy" and bidirectional:
            raise ValueError("bridge: 'copy' needs a one-direction encoder; use 'dense' with bidirectional=True")
        self.dtype = check_dtype(dtype)
        self.src_vocab, self.tgt_vocab = int(src_vocab), int(tgt_vocab)
        self.embed, self.hidden, self.layers = int(embed), int(hidden), int(layers)
        self.attention, self.bridge, self.bidirectional = attention, bridge, bool(bidirectional)
        self.dirs = 2 if bidirectional else 1
        H, Hy, E = self.hidden, self.dirs * self.hidden, self.embed
        if attention == "dot" and Hy != H:
            raise ValueError("attention: 'dot' needs the encoder's output size (dirs * hidden) to "
                             "equal the decoder's hidden size; use 'general' with bidirectional=True")
        self.feed = attention != "none"                     # input feeding with attention
        sub = lambda k: seed * 64 + k                       # noqa: E731  (one stream per part)
        cls = {"gru": GRU, "rnn": RNN}.get(cell, LSTM) if isinstance(cell, str) else LSTM
        kw = {} if cls is not LSTM else {"variant": cell}
        self.cell = cell
        self.enc = cls(E, H, num_layers=layers, bidirectional=bidirectional, dtype=self.dtype,
                       seed=sub(1), **kw)
        self.dec = cls(E + (H if self.feed else 0), H, num_layers=layers, dtype=self.dtype,
                       seed=sub(2), **kw)
        self.lstm = self.enc.kind == "lstm"
        self.src_embed = Embedding(src_vocab, E, dtype=self.dtype, seed=sub(3))
        self.tgt_embed = Embedding(tgt_vocab, E, dtype=self.dtype, seed=sub(4))
        self.bridges = {}
        if bridge == "dense":
            for part in ("h", "c") if self.lstm else ("h",):
                for layer in range(layers):
                    self.bridges[f"bridge_{part}_l{layer}"] = Dense(
                        Hy, H, dtype=self.dtype, seed=sub(8 + 2 * layer + (part == "c")))
        rng = np.random.default_rng([seed, 6007])
        self.attn: dict[str, np.ndarray] = {}
        if attention == "general":
            self.attn["W_a"] = rng.uniform(-1, 1, (H, Hy)) / np.sqrt(Hy)
        elif attention == "bahdanau":
            self.attn["W_q"] = rng.uniform(-1, 1, (H, H)) / np.sqrt(H)        # A = H units
            self.attn["U_k"] = rng.uniform(-1, 1, (H, Hy)) / np.sqrt(Hy)
            self.attn["v"] = rng.uniform(-1, 1, H) / np.sqrt(H)
        self.attn = {k: v.astype(self.dtype) for k, v in self.attn.items()}
        self.att_out = Dense(Hy + H, H, dtype=self.dtype, seed=sub(5)) if self.feed else None
        self.out = Dense(H, tgt_vocab, dtype=self.dtype, seed=sub(6))
        self.params: dict[str, np.ndarray] = {}
        parts = [("src_embed", self.src_embed), ("tgt_embed", self.tgt_embed), ("enc", self.enc),
                 ("dec", self.dec), *self.bridges.items(), ("att_out", self.att_out),
                 ("out", self.out)]
        for prefix, part in parts:
            for k, v in (part.params.items() if part is not None else ()):
                self.params[f"{prefix}.{k}"] = v
        for k, v in self.attn.items():
            self.params[f"attn.{k}"] = v

    # -- input checks --------------------------------------------------------------------------
    def _ids(self, name, a, vocab):
        a = np.asarray(a)
        if a.ndim != 2 or a.dtype.kind not in "iu":
            raise ValueError(f"{name}: expected (steps, B) integer token ids, got {a.dtype} {a.shape}")
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name}: empty sequence batch of shape {a.shape}")
        if a.min() < 0 or a.max() >= vocab:
            raise ValueError(f"{name}: expected token ids in [0, {vocab}), got [{a.min()}, {a.max()}]")
        return a.astype(np.int64)

    def _lengths(self, name, lengths, steps, B):
        if lengths is None:
            return np.full(B, steps, dtype=np.int64)
        n = np.asarray(lengths)
        if n.shape != (B,) or n.dtype.kind not in "iu":
            raise ValueError(f"{name}: expected ({B},) integers, got {n.dtype} {n.shape}")
        if n.min() < 1 or n.max() > steps:
            raise ValueError(f"{name}: expected lengths in [1, {steps}], got [{n.min()}, {n.max()}]")
        return n.astype(np.int64)

    # -- encoder and bridge --------------------------------------------------------------------
    def encode(self, src, src_lengths=None):
        """Encoder outputs Y (S, B, Hy), the source mask (S, B), the decoder's initial state and
        the cache of all three for backward."""
        src = self._ids("src", src, self.src_vocab)
        S, B = src.shape
        n = self._lengths("src_lengths", src_lengths, S, B)
        e, ecache = self.src_embed.forward(src)                              # (S, B, E)
        Y, s_n, rcache = self.enc.forward(e, lengths=n)                      # (S, B, Hy)
        mask = np.arange(S)[:, None] < n[None, :]                            # (S, B)
        parts = s_n if self.lstm else (s_n,)                                 # each (L*dirs, B, H)
        if self.bridge == "copy":
            init = tuple(p.copy() for p in parts)
            bcache = None
        elif self.bridge == "zero":
            init = tuple(np.zeros((self.layers, B, self.hidden), dtype=self.dtype) for _ in parts)
            bcache = None
        else:
            init, bcache = [], []
            for part, p in zip("hc", parts):
                out = np.empty((self.layers, B, self.hidden), dtype=self.dtype)
                for layer in range(self.layers):
                    cat = np.concatenate(list(p[layer * self.dirs:(layer + 1) * self.dirs]), axis=1)
                    z, _ = self.bridges[f"bridge_{part}_l{layer}"].forward(cat)    # (B, H)
                    out[layer] = np.tanh(z) if part == "h" else z
                    bcache.append((part, layer, cat, out[layer]))
                init.append(out)
            init = tuple(init)
        return Y, mask, (init if self.lstm else init[0]), (ecache, rcache, bcache)

    # -- attention -----------------------------------------------------------------------------
    def _keys(self, Y):
        """What the score reads of Y, once per sequence: Y itself, W_a Y or U_k Y (S, B, .)."""
        if self.attention == "general":
            return Y @ self.attn["W_a"].T
        if self.attention == "bahdanau":
            return Y @ self.attn["U_k"].T
        return Y

    def _attend(self, h, Y, K, mask):
        """a_t (B, H), alpha (S, B) and the step's cache, for the top decoder output h (B, H)."""
        if self.attention == "bahdanau":
            u = np.tanh(K + (h @ self.attn["W_q"].T)[None])                  # (S, B, A)
            score = u @ self.attn["v"]                                       # (S, B)
        else:
            u = None
            score = np.einsum("sbh,bh->sb", K, h)                            # (S, B)
        alpha = _sigma_rows(score, mask)                                     # (S, B)
        ctx = np.einsum("sb,sbh->bh", alpha, Y)                              # (B, Hy)
        cat = np.concatenate([ctx, h], axis=1)                               # (B, Hy + H)
        z, _ = self.att_out.forward(cat)
        a = np.tanh(z)                                                       # (B, H)
        return a, alpha, (h, u, alpha, cat, a)

    def _attend_backward(self, da, Y, K, c, g, dY, dK):
        """Backward of one _attend: adds into dY, dK (S, B, .) and the grads g; returns dh."""
        h, u, alpha, cat, a = c
        Hy = Y.shape[2]
        dz = da * (1.0 - a * a)                                              # (B, H)
        g["att_out.weight"] += dz.T @ cat
        g["att_out.bias"] += dz.sum(axis=0)
        dcat = dz @ self.att_out.params["weight"]                            # (B, Hy + H)
        dctx, dh = dcat[:, :Hy], dcat[:, Hy:].copy()
        dalpha = np.einsum("bh,sbh->sb", dctx, Y)                            # (S, B)
        dY += alpha[:, :, None] * dctx[None]
        dscore = alpha * (dalpha - (alpha * dalpha).sum(axis=0, keepdims=True))   # (S, B)
        if self.attention == "bahdanau":
            g["attn.v"] += np.einsum("sb,sba->a", dscore, u)
            dpre = dscore[:, :, None] * self.attn["v"] * (1.0 - u * u)     # (S, B, A)
            dq = dpre.sum(axis=0)                                            # (B, A)
            dK += dpre
            g["attn.W_q"] += dq.T @ h
            dh += dq @ self.attn["W_q"]
        else:
            dh += np.einsum("sb,sbh->bh", dscore, K)
            dK += dscore[:, :, None] * h[None]
        return dh

    # -- decoder -------------------------------------------------------------------------------
    def _step(self, token, a_prev, state):
        """One decoder step from input token ids (B,): top output h (B, H), new state, cache."""
        emb, ecache = self.tgt_embed.forward(token)                          # (B, E)
        d = np.concatenate([emb, a_prev], axis=1) if self.feed else emb      # (B, E [+ H])
        y, state_n, rcache = self.dec.forward(d[None], state)                # (1, B, H)
        return y[0], state_n, (ecache, rcache)

    def forward(self, src, tgt, src_lengths=None, teacher_forcing: float = 1.0,
                rng: np.random.Generator | None = None):
        """Logits (T, B, V) for the target steps, and the cache for :meth:`backward`.

        tgt (T, B): the target ids (each sequence ends in EOS; what follows is padding, which the
        loss should not count). Step t's input is BOS (t = 0) or the gold ``tgt[t - 1]``, or with
        ``teacher_forcing`` < 1, per step and sequence with probability 1 - teacher_forcing
        (drawn from ``rng``), the model's own ``argmax(logits[t - 1])``."""
        tgt = self._ids("tgt", tgt, self.tgt_vocab)
        T, B = tgt.shape
        if not 0.0 <= float(teacher_forcing) <= 1.0:
            raise ValueError(f"teacher_forcing: expected a ratio in [0, 1], got {teacher_forcing!r}")
        Y, mask, state, encache = self.encode(src, src_lengths)
        if Y.shape[1] != B:
            raise ValueError(f"tgt: expected {Y.shape[1]} sequences like src, got {B}")
        if teacher_forcing < 1.0:
            rng = rng if rng is not None else np.random.default_rng(0)
            gold = rng.random((T, B)) < teacher_forcing                       # (T, B)
        K = self._keys(Y)
        a = np.zeros((B, self.hidden), dtype=self.dtype)
        token = np.full(B, BOS, dtype=np.int64)
        logits = np.empty((T, B, self.tgt_vocab), dtype=self.dtype)
        steps, inputs = [], []
        for t in range(T):
            if t > 0:
                token = tgt[t - 1] if teacher_forcing >= 1.0 else \
                    np.where(gold[t], tgt[t - 1], logits[t - 1].argmax(axis=1))
            inputs.append(token)
            h, state, scache = self._step(token, a, state)
            if self.feed:
                a, alpha, acache = self._attend(h, Y, K, mask)
            else:
                a, acache = h, None
            logits[t] = self.out.forward(a)[0]                               # (B, V)
            steps.append((scache, acache, a))
        cache = dict(Y=Y, K=K, mask=mask, encache=encache, steps=steps, inputs=np.array(inputs))
        return logits, cache

    def loss(self, src, tgt, src_lengths=None, tgt_lengths=None, teacher_forcing: float = 1.0,
             rng: np.random.Generator | None = None):
        """Mean cross-entropy over the counted target steps (t < tgt_lengths, default all T),
        d loss / d logits, and the cache: ``loss, dlogits, cache``."""
        logits, cache = self.forward(src, tgt, src_lengths, teacher_forcing, rng)
        T, B = logits.shape[:2]
        n = self._lengths("tgt_lengths", tgt_lengths, T, B)
        loss, dlogits = softmax_cross_entropy(logits, np.asarray(tgt, dtype=np.int64),
                                              np.arange(T)[:, None] < n[None, :])
        return loss, dlogits, cache

    def backward(self, dlogits, cache) -> dict[str, np.ndarray]:
        """Gradients for every entry of ``params`` (same keys, fresh arrays) given
        d loss / d logits (T, B, V)."""
        Y, K = cache["Y"], cache["K"]
        T, B = len(cache["steps"]), Y.shape[1]
        dlogits = check_array("dlogits", dlogits, (T, B, self.tgt_vocab), self.dtype)
        g = {k: np.zeros_like(v) for k, v in self.params.items()}
        dY, dK = np.zeros_like(Y), np.zeros_like(K)
        da_next = np.zeros((B, self.hidden), dtype=self.dtype)     # into a_t from step t+1's input
        dstate = None
        for t in range(T - 1, -1, -1):
            scache, acache, a = cache["steps"][t]
            g["out.weight"] += dlogits[t].T @ a
            g["out.bias"] += dlogits[t].sum(axis=0)
            da = dlogits[t] @ self.out.params["weight"] + da_next           # (B, H)
            dh = self._attend_backward(da, Y, K, acache, g, dY, dK) if self.feed else da
            ecache, rcache = scache
            dd, dstate, gr = self.dec.backward(dh[None], rcache, dstate)
            for k, v in gr.items():
                g[f"dec.{k}"] += v
            dd = dd[0]                                                       # (B, E [+ H])
            E = self.embed
            if self.feed:
                da_next = dd[:, E:]
            g["tgt_embed.weight"] += self.tgt_embed.backward(dd[:, :E], ecache)[1]["weight"]
        if self.attention == "general":
            dY += dK @ self.attn["W_a"]
            g["attn.W_a"] += np.einsum("sbh,sby->hy", dK, Y)
        elif self.attention == "bahdanau":
            dY += dK @ self.attn["U_k"]
            g["attn.U_k"] += np.einsum("sba,sby->ay", dK, Y)
        elif self.attention == "dot":
            dY += dK
        self._encode_backward(dY, dstate, cache["encache"], g)
        return g

    def _encode_backward(self, dY, dinit, encache, g):
        ecache, rcache, bcache = encache
        parts = dinit if self.lstm else (dinit,)                             # each (L, B, H)
        L, B, H = self.layers, dY.shape[1], self.hidden
        dfinal = None
        if self.bridge == "copy":
            dfinal = dinit
        elif self.bridge == "dense":
            dn = [np.zeros((L * self.dirs, B, H), dtype=self.dtype) for _ in parts]
            for part, layer, cat, out in bcache:
                i = "hc".index(part)
                dz = parts[i][layer] * ((1.0 - out * out) if part == "h" else 1.0)   # (B, H)
                name = f"bridge_{part}_l{layer}"
                g[f"{name}.weight"] += dz.T @ cat
                g[f"{name}.bias"] += dz.sum(axis=0)
                dcat = dz @ self.bridges[name].params["weight"]              # (B, dirs*H)
                for d in range(self.dirs):
                    dn[i][layer * self.dirs + d] = dcat[:, d * H:(d + 1) * H]
            dfinal = tuple(dn) if self.lstm else dn[0]
        de, _, gr = self.enc.backward(dY, rcache, dfinal)
        for k, v in gr.items():
            g[f"enc.{k}"] += v
        g["src_embed.weight"] += self.src_embed.backward(de, ecache)[1]["weight"]

    # -- decoding ------------------------------------------------------------------------------
    def _max_len(self, max_len, S):
        if max_len is None:
            return 2 * S + 10
        return check_positive_int("max_len", max_len)

    def _decode_step(self, token, a, state, Y, K, mask):
        """Log-probabilities (n, V) of the next token, the new a, state and alpha (S, n)."""
        h, state, _ = self._step(token, a, state)
        if self.feed:
            a, alpha, _ = self._attend(h, Y, K, mask)
        else:
            a, alpha = h, np.zeros(mask.shape, dtype=self.dtype)
        logits, _ = self.out.forward(a)
        z = logits - logits.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), a, state, alpha

    def greedy(self, src, src_lengths=None, max_len: int | None = None) -> list[dict]:
        """Greedy decoding: at each step the most likely token, until EOS or ``max_len`` (default
        2 S + 10) tokens. Per sequence a dict: ``tokens`` (ids without EOS), ``logp`` (the model's
        log-likelihood of what it emitted, EOS included), ``finished`` (EOS reached) and
        ``attention``, the weights alpha (emitted steps, source length), or None without
        attention."""
        Y, mask, state, _ = self.encode(src, src_lengths)
        S, B = mask.shape
        K = self._keys(Y)
        n = mask.sum(axis=0)
        a = np.zeros((B, self.hidden), dtype=self.dtype)
        token = np.full(B, BOS, dtype=np.int64)
        out = [{"tokens": [], "logp": 0.0, "finished": False, "attention": []} for _ in range(B)]
        for _ in range(self._max_len(max_len, S)):
            logp, a, state, alpha = self._decode_step(token, a, state, Y, K, mask)
            token = logp.argmax(axis=1)
            for b, r in enumerate(out):
                if r["finished"]:
                    continue
                r["logp"] += float(logp[b, token[b]])
                r["attention"].append(alpha[:n[b], b].copy())
                if token[b] == EOS:
                    r["finished"] = True
                else:
                    r["tokens"].append(int(token[b]))
            if all(r["finished"] for r in out):
                break
        for b, r in enumerate(out):
            r["attention"] = np.array(r["attention"]).reshape(-1, n[b]) if self.feed else None
        return out

    def beam_search(self, src, src_lengths=None, beam: int = 4, max_len: int | None = None) -> list[dict]:
        """Beam search: per sequence the ``beam`` best prefixes by log-likelihood are extended
        each step; a prefix that emits EOS is finished. The search stops when the best finished
        one scores at least the best unfinished prefix (log-probabilities only lower a score, so
        none could pass it), or at ``max_len``. Returns the best finished hypothesis (an
        unfinished one only where none finished) per sequence, as :meth:`greedy` does, with the
        greedy decoding kept as one more candidate: the beam can prune the greedy path (k other
        prefixes outscore it at some step and then end worse), and the result never scores below
        greedy decoding. ``beam=1`` is greedy decoding."""
        beam = check_positive_int("beam", beam)
        greedy = self.greedy(src, src_lengths, max_len)
        Y, mask, state, _ = self.encode(src, src_lengths)
        S, B = mask.shape
        K = self._keys(Y)
        limit = self._max_len(max_len, S)
        parts = state if self.lstm else (state,)
        results = []
        for b in range(B):
            n = int(mask[:, b].sum())
            Yb, Kb, mb = Y[:, b:b + 1], K[:, b:b + 1], mask[:, b:b + 1]
            st = tuple(p[:, b:b + 1] for p in parts)                         # (L, 1, H) each
            alive = [(0.0, [], [])]                                          # score, tokens, attention
            a = np.zeros((1, self.hidden), dtype=self.dtype)
            finished = []
            for _ in range(limit):
                m = len(alive)
                token = np.array([hyp[1][-1] if hyp[1] else BOS for hyp in alive])
                logp, a, st2, alpha = self._decode_step(
                    token, a, st if self.lstm else st[0], np.repeat(Yb, m, 1),
                    np.repeat(Kb, m, 1), np.repeat(mb, m, 1))
                st2 = st2 if self.lstm else (st2,)
                scores = np.array([hyp[0] for hyp in alive])[:, None] + logp     # (m, V)
                order = np.argsort(-scores, axis=None, kind="stable")[:beam]
                keep = []
                for flat in order:
                    i, v = divmod(int(flat), logp.shape[1])
                    hyp = (float(scores[i, v]), alive[i][1] + [v], alive[i][2] + [alpha[:n, i].copy()])
                    (finished if v == EOS else keep).append((hyp, i))
                alive = [h for h, _ in keep]
                if not alive or (finished and max(f[0][0] for f in finished) >= alive[0][0]):
                    break
                idx = np.array([i for _, i in keep])
                a = a[idx]
                st = tuple(p[:, idx] for p in st2)
            pool = [f for f, _ in finished] or alive
            score, tokens, att = max(pool, key=lambda h: h[0])
            done = bool(finished)
            g = greedy[b]
            if g["finished"] and (not done or g["logp"] > score):
                results.append(g)
                continue
            results.append({"tokens": tokens[:-1] if done else tokens, "logp": score,
                            "finished": done,
                            "attention": np.array(att).reshape(-1, n) if self.feed else None})
        return results
