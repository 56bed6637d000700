"""Numba-compiled pieces of the fast path (imported only when numba is installed).

Everything compiled lives in this one file on purpose: numba's on-disk cache checks the time stamp
of the file that defines a function, not of the functions it calls, so keeping the helpers beside
the kernels means that any edit here recompiles everything that depends on it.

Numerics
--------
* No ``fastmath`` except ``contract`` (fusing ``a * b + c`` into one FMA, which only removes a
  rounding); no reassociation, no approximate reciprocals, so results stay within a few ulp of the
  NumPy reference (the test suite holds float64 to 1e-12).
* ``error_model="numpy"``: a float division does not check for zero (Python semantics would add a
  branch that raises, and that branch stops LLVM from vectorising the loop).
* ``exp`` and ``tanh`` are written out below (Cody-Waite range reduction with a rounding shifter,
  a near-minimax polynomial accurate to below half an ulp on the reduced range, and a scale by 2^n
  built from the exponent bits). libm's scalar ``tanh`` costs ~16 ns a call here and cannot be
  vectorised without Intel SVML; these compile to straight-line arithmetic that LLVM vectorises
  (~0.9 ns an element in float64, ~0.4 ns in float32) and agree with NumPy to 4e-16 (float64).
  The sigmoid is ``e = exp(-|z|)``, ``1/(1+e)`` or ``e/(1+e)``; below 2.3e-308 (float64) /
  1.2e-38 (float32) it returns that smallest normal number instead of a subnormal or zero.
* float32 inputs are computed in float32 (float32 constants, a shorter polynomial).

Kernel layout
-------------
Two paths per cell (``_api.SMALL_MAX_H`` chooses by hidden size):

* *small*: the whole sequence is one compiled call. The recurrent products are register-tiled
  loops (``_vecmat``: 8 columns in 8 accumulators, which LLVM's SLP vectoriser turns into one
  vector register; the LSTM's run four or eight such tiles at once, ``_gates4_vecmat_add2``,
  ``_four_vecmat_s``).
  For the LSTM the elementwise work of a step runs as vectorised loops over a chunk of up to
  CAPF // H rows, the whole batch of the Gers 2002 workload (``_lstm_fwd_flat``: four short
  passes, see its docstring; ``_lstm_bwd_flat``: one loop), on gate-major scratch arrays whose
  segment stride is
  a compile-time constant, so LLVM can prove the streams disjoint; the gates G are kept
  gate-major, (T, 4, B, H), which the loops write and read in place; short per-row copies
  translate from and to the (B, 4H) layouts of ``xp`` and ``dxp``. GRU and RNN run row by row.
  No allocation inside the time loop.
* *large*: a Python loop over time calls BLAS (``np.matmul`` with ``out=``) for the per-step
  recurrent products and one compiled call per step for everything elementwise (row by row;
  for the LSTM, split by rows over a caller's OpenMP team where one is given: the section
  "LSTM large-path steps on a caller's OpenMP team").

Two LLVM facts shape the code: an index numba cannot prove non-negative gets a wraparound select
that hides the address pattern (hence uint64 indices), and a loop that stores to several
run-time-distant places of arrays it also reads needs run-time alias checks, past a handful of
which LLVM leaves it scalar (hence OUT scratch arrays with compile-time segment strides). The
small forward's last elementwise pass stores the four gates at run-time distances into G and
still vectorises (its zmm divisions are in the assembly, and it runs faster than with copies).

``dW_hh`` (and ``dR``, ``db_hh``) is one matrix product after the loop, done by the caller, except
on the LSTM's small path, which accumulates ``dW_hh`` per step from registers.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import carray, njit, prange, types
from numba.extending import intrinsic, overload

_FM = {"contract"}
_JIT = dict(cache=True, error_model="numpy", fastmath=_FM, nogil=True)



# ----------------------------------------------------------------------------------------------
# Elementary functions
# ----------------------------------------------------------------------------------------------

@intrinsic
def _bits_to_f64(typingctx, x):
    """Reinterpret the bits of an int64 as a float64 (LLVM bitcast, vectorisable)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return sig, codegen


@intrinsic
def _bits_to_f32(typingctx, x):
    """Reinterpret the bits of an int32 as a float32."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return sig, codegen


@intrinsic
def _f64_to_bits(typingctx, x):
    """Reinterpret the bits of a float64 as an int64."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return sig, codegen


@intrinsic
def _f32_to_bits(typingctx, x):
    """Reinterpret the bits of a float32 as an int32."""
    if not isinstance(x, types.Float) or x.bitwidth != 32:
        return None
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))
    return sig, codegen


# Range reduction x = n ln2 + r, |r| <= ln2/2: n = round(x log2 e) by adding and subtracting
# 1.5 * 2^52 (the integer n then sits in the low bits of the sum); ln 2 split so that n * _LN2_HI
# is exact (fdlibm's constants). Polynomials: Chebyshev-node interpolants on [-ln2/2, ln2/2]
# (near-minimax), relative error < 2e-17 (float64) and ~1e-8 (float32), below half an ulp.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SHIFT = 6755399441055744.0                    # 1.5 * 2^52
_SHIFT_BITS = 0x4338000000000000
_E0, _E1, _E2, _E3 = 1.0, 1.0, 0.5000000000000019, 0.1666666666666668
_E4, _E5, _E6, _E7 = 0.0416666666664881, 0.008333333333319601, 0.0013888888952314775, \
    0.00019841269890047113
_E8, _E9, _E10, _E11 = 2.4801485482328494e-05, 2.755724091857897e-06, 2.763263963904103e-07, \
    2.5110037605963777e-08
# expm1(r) = r + r^2 q(r)
_Q0, _Q1, _Q2, _Q3, _Q4 = 0.5000000000000001, 0.16666666666666669, 0.041666666666624164, \
    0.008333333333330065, 0.0013888888917196719
_Q5, _Q6, _Q7, _Q8, _Q9 = 0.00019841269863040545, 2.4801521322368692e-05, 2.7557268480310024e-06, \
    2.7620075879983367e-07, 2.5100375832561234e-08
# float32
_LN2_HI_F = 0.693359375
_LN2_LO_F = -2.12194440e-4
_SHIFT_F = 12582912.0                          # 1.5 * 2^23
_SHIFT_BITS_F = 0x4B400000


@njit(inline="always", **_JIT)
def _exp_nonpos64(x):
    """exp(x) for x <= 0 (float64, ~1 ulp). Below -708.39 (where exp(x) < 2.3e-308, the
    smallest normal number) it returns exp(-708.39) instead of a subnormal or zero."""
    x = max(x, -708.39)
    k = x * _LOG2E + _SHIFT
    n = k - _SHIFT                                             # round(x log2 e), in [-1022, 0]
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = _E11
    p = p * r + _E10
    p = p * r + _E9
    p = p * r + _E8
    p = p * r + _E7
    p = p * r + _E6
    p = p * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + _E1
    p = p * r + _E0
    ni = _f64_to_bits(k) - np.int64(_SHIFT_BITS)
    return p * _bits_to_f64((ni + np.int64(1023)) << np.int64(52))


@njit(inline="always", **_JIT)
def _expm1_nonpos64(x):
    """expm1(x) for x <= 0 (float64, a few ulp, accurate near 0); -1 below -60."""
    x = max(x, -60.0)
    k = x * _LOG2E + _SHIFT
    n = k - _SHIFT
    r = (x - n * _LN2_HI) - n * _LN2_LO
    q = _Q9
    q = q * r + _Q8
    q = q * r + _Q7
    q = q * r + _Q6
    q = q * r + _Q5
    q = q * r + _Q4
    q = q * r + _Q3
    q = q * r + _Q2
    q = q * r + _Q1
    q = q * r + _Q0
    em = r + r * r * q                                         # expm1(r)
    ni = _f64_to_bits(k) - np.int64(_SHIFT_BITS)
    s = _bits_to_f64((ni + np.int64(1023)) << np.int64(52))    # 2^n, n in [-87, 0]
    return s * em + (s - 1.0)                                  # 2^n (e^r - 1) + (2^n - 1)


@njit(inline="always", **_JIT)
def _exp_nonpos32(x):
    """exp(x) for x <= 0 in float32; exp(-87.33) below -87.33 (the smallest normal float32)."""
    x = max(x, np.float32(-87.33))
    k = x * np.float32(_LOG2E) + np.float32(_SHIFT_F)
    n = k - np.float32(_SHIFT_F)
    r = (x - n * np.float32(_LN2_HI_F)) - n * np.float32(_LN2_LO_F)
    p = np.float32(1.0 / 5040.0)                               # Taylor to r^7/7!
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    ni = _f32_to_bits(k) - np.int32(_SHIFT_BITS_F)
    return p * _bits_to_f32((ni + np.int32(127)) << np.int32(23))


@njit(inline="always", **_JIT)
def _expm1_nonpos32(x):
    """expm1(x) for x <= 0 in float32; -1 below -30."""
    x = max(x, np.float32(-30.0))
    k = x * np.float32(_LOG2E) + np.float32(_SHIFT_F)
    n = k - np.float32(_SHIFT_F)
    r = (x - n * np.float32(_LN2_HI_F)) - n * np.float32(_LN2_LO_F)
    p = np.float32(1.0 / 40320.0)                              # Taylor to r^8/8!
    p = p * r + np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    em = r + r * r * p
    ni = _f32_to_bits(k) - np.int32(_SHIFT_BITS_F)
    s = _bits_to_f32((ni + np.int32(127)) << np.int32(23))
    return s * em + (s - np.float32(1.0))


def _sigmoid(z):
    """Logistic function (dispatches on float32/float64 inside compiled code)."""
    raise NotImplementedError


def _tanh(z):
    """tanh (dispatches on float32/float64 inside compiled code)."""
    raise NotImplementedError


# inline="always": inlined into the numba IR of every caller, so that LLVM never leaves one as a
# call (which would stop the vectorisation of the loop around it). The bodies have no branches.

@overload(_sigmoid, inline="always", jit_options=dict(error_model="numpy", fastmath=_FM))
def _ov_sigmoid(z):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def impl(z):
            e = _exp_nonpos32(-abs(z))
            num = max(e, np.float32(z >= 0))                    # 1 if z >= 0 else e
            return num / (np.float32(1.0) + e)
        return impl
    if isinstance(z, types.Float):
        def impl(z):
            e = _exp_nonpos64(-abs(z))
            num = max(e, np.float64(z >= 0))
            return num / (1.0 + e)
        return impl
    return None


@overload(_tanh, inline="always", jit_options=dict(error_model="numpy", fastmath=_FM))
def _ov_tanh(z):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def impl(z):
            t = _expm1_nonpos32(np.float32(-2.0) * abs(z))    # tanh|z| = -t / (2 + t)
            return math.copysign(-t / (np.float32(2.0) + t), z)
        return impl
    if isinstance(z, types.Float):
        def impl(z):
            t = _expm1_nonpos64(-2.0 * abs(z))
            return math.copysign(-t / (2.0 + t), z)
        return impl
    return None


@njit(**_JIT)
def vec_sigmoid(x, out):
    """Elementwise sigmoid over flat arrays (exposed for the tests of the elementary functions)."""
    for k in range(x.shape[0]):
        out[k] = _sigmoid(x[k])


@njit(**_JIT)
def vec_tanh(x, out):
    """Elementwise tanh over flat arrays (exposed for the tests)."""
    for k in range(x.shape[0]):
        out[k] = _tanh(x[k])


# ----------------------------------------------------------------------------------------------
# Conventions of the hot code
# ----------------------------------------------------------------------------------------------
# * Arrays are used through flat C-order views (``a.reshape(-1)``, made once per call) and every
#   index is a uint64: numba adds a negative-index wraparound select to every signed index, and
#   that select hides the address pattern from LLVM's dependence analysis (no vectorisation).
#   Mixed uint64/int64 arithmetic gives float64 in numba, so integer literals are wrapped in U().
# * A vectorised loop stores to one "stream" per array, or to one scratch array ``OUT`` at
#   compile-time-constant distances (multiples of CAP): several store streams into one array at a
#   run-time distance (G's i, f, g, o blocks, H apart) make LLVM's runtime alias checks fail and
#   the scalar loop run. Results go to OUT first and are copied out by short single-stream loops.
# * Small matrix-vector products (hidden sizes up to ~64) use 8 explicit accumulators over an
#   8-wide column tile (``_vecmat``); with LLVM's SLP vectoriser on (see _api) the tile is one
#   vector register, so the products run from registers instead of a load/store per FMA.
#   A tile that is written to one array from another (``out = add + a``) loads all eight values
#   before its first store (``_set8``): LLVM cannot prove two arrays apart, and with the loads
#   and stores interleaved SLP kept them as eight scalar adds and stores, each lane extracted
#   from the register (W1's recurrent products in float64: 0.125 -> 0.098 ms).

U = np.uint64
CAP = 520                     # OUT segment stride (elements); rows are processed in chunks of CAP
_CAP = U(CAP)
_C1 = U(CAP)
_C2 = U(2 * CAP)
_C3 = U(3 * CAP)
_C4 = U(4 * CAP)
_C5 = U(5 * CAP)
_C6 = U(6 * CAP)
_C7 = U(7 * CAP)
NSEG = 8


def new_out(dtype):
    """The OUT scratch of a kernel call (allocated by the caller of the large-path kernels)."""
    return np.empty(NSEG * CAP, dtype=dtype)


@njit(inline="always", **_JIT)
def _fill(a, base, n, v):
    for k in range(n):
        a[base + k] = v


@njit(inline="always", **_JIT)
def _copy(dst, db, src, sb, n):
    for k in range(n):
        dst[db + k] = src[sb + k]


@njit(inline="always", **_JIT)
def _copy_short(dst, db, src, sb, n):
    """_copy for short runs (one row's H values): eight at a time, the eight loads before the
    first store, so that the SLP vectoriser makes each eight one vector move. _copy's loop is
    vectorised for long runs only and copies a run of 8 (W1's H) in its scalar remainder; the
    small LSTM backward's per-row copies to dxp and dc took W1's backward kernel ~5% longer."""
    k = U(0)
    while k + U(8) <= n:
        s = sb + k
        a = (src[s], src[s + U(1)], src[s + U(2)], src[s + U(3)], src[s + U(4)], src[s + U(5)],
             src[s + U(6)], src[s + U(7)])
        d = db + k
        dst[d] = a[0]
        dst[d + U(1)] = a[1]
        dst[d + U(2)] = a[2]
        dst[d + U(3)] = a[3]
        dst[d + U(4)] = a[4]
        dst[d + U(5)] = a[5]
        dst[d + U(6)] = a[6]
        dst[d + U(7)] = a[7]
        k += U(8)
    while k < n:
        dst[db + k] = src[sb + k]
        k += U(1)


@njit(inline="always", **_JIT)
def _vecmat(x, xb, K, M, mb, ldm, N, out, ob, zero):
    """out[ob + n] += sum_{j<K} x[xb + j] * M[mb + j*ldm + n] for n < N.

    Eight columns at a time in two interleaved accumulator chains (even and odd j), so that
    consecutive FMAs do not wait on each other; with SLP each chain is one vector register."""
    n0 = U(0)
    while n0 + U(8) <= N:
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        a4 = zero
        a5 = zero
        a6 = zero
        a7 = zero
        b0 = zero
        b1 = zero
        b2 = zero
        b3 = zero
        b4 = zero
        b5 = zero
        b6 = zero
        b7 = zero
        m = mb + n0
        j = U(0)
        while j + U(2) <= K:
            xj = x[xb + j]
            xk = x[xb + j + U(1)]
            a0 += xj * M[m]
            a1 += xj * M[m + U(1)]
            a2 += xj * M[m + U(2)]
            a3 += xj * M[m + U(3)]
            a4 += xj * M[m + U(4)]
            a5 += xj * M[m + U(5)]
            a6 += xj * M[m + U(6)]
            a7 += xj * M[m + U(7)]
            m2 = m + ldm
            b0 += xk * M[m2]
            b1 += xk * M[m2 + U(1)]
            b2 += xk * M[m2 + U(2)]
            b3 += xk * M[m2 + U(3)]
            b4 += xk * M[m2 + U(4)]
            b5 += xk * M[m2 + U(5)]
            b6 += xk * M[m2 + U(6)]
            b7 += xk * M[m2 + U(7)]
            m = m2 + ldm
            j += U(2)
        if j < K:
            xj = x[xb + j]
            a0 += xj * M[m]
            a1 += xj * M[m + U(1)]
            a2 += xj * M[m + U(2)]
            a3 += xj * M[m + U(3)]
            a4 += xj * M[m + U(4)]
            a5 += xj * M[m + U(5)]
            a6 += xj * M[m + U(6)]
            a7 += xj * M[m + U(7)]
        o = ob + n0
        out[o] += a0 + b0
        out[o + U(1)] += a1 + b1
        out[o + U(2)] += a2 + b2
        out[o + U(3)] += a3 + b3
        out[o + U(4)] += a4 + b4
        out[o + U(5)] += a5 + b5
        out[o + U(6)] += a6 + b6
        out[o + U(7)] += a7 + b7
        n0 += U(8)
    _vecmat_cols(x, xb, K, M, mb, ldm, n0, N, out, ob, zero)


@njit(inline="always", **_JIT)
def _vecmat_cols(x, xb, K, M, mb, ldm, n0, N, out, ob, zero):
    """The columns [n0, N) of _vecmat one at a time (its tail beside the 8-column tiles)."""
    while n0 < N:
        a = zero
        m = mb + n0
        for j in range(K):
            a += x[xb + j] * M[m]
            m += ldm
        out[ob + n0] += a
        n0 += U(1)


@njit(inline="always", **_JIT)
def _vecmat_add(x, xb, K, M, mb, ldm, N, add, ab, out, ob, zero):
    """out[ob + n] = add[ab + n] + sum_{j<K} x[xb + j] * M[mb + j*ldm + n] for n < N (the sum
    first, as ``x W^T + b`` in the reference). One accumulator chain per tile: the input
    projection's rows (its one caller, K = D inputs) are independent, so the core overlaps them;
    the LSTM's recurrent product runs eight such chains at once (``_gates4_vecmat_add2``)."""
    n0 = U(0)
    while n0 + U(8) <= N:
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        a4 = zero
        a5 = zero
        a6 = zero
        a7 = zero
        m = mb + n0
        for j in range(K):
            xj = x[xb + j]
            a0 += xj * M[m]
            a1 += xj * M[m + U(1)]
            a2 += xj * M[m + U(2)]
            a3 += xj * M[m + U(3)]
            a4 += xj * M[m + U(4)]
            a5 += xj * M[m + U(5)]
            a6 += xj * M[m + U(6)]
            a7 += xj * M[m + U(7)]
            m += ldm
        _set8(out, ob + n0, add, ab + n0, (a0, a1, a2, a3, a4, a5, a6, a7))
        n0 += U(8)
    _vecmat_add_cols(x, xb, K, M, mb, ldm, n0, N, add, ab, out, ob, zero)


@njit(inline="always", **_JIT)
def _vecmat_add_cols(x, xb, K, M, mb, ldm, n0, N, add, ab, out, ob, zero):
    """The columns [n0, N) of _vecmat_add one at a time."""
    while n0 < N:
        acc = zero
        m = mb + n0
        for j in range(K):
            acc += x[xb + j] * M[m]
            m += ldm
        out[ob + n0] = add[ab + n0] + acc
        n0 += U(1)


@njit(inline="always", **_JIT)
def _vecmat_s(x, xb, xs, K, M, mb, ldm, N, out, ob, zero):
    """out[ob + n] += sum_{j<K} x[xb + j*xs] * M[mb + j*ldm + n] for n < N: like ``_vecmat`` with a
    strided x (a column of a row-major array), for gradients summed over the batch rows."""
    n0 = U(0)
    while n0 + U(8) <= N:
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        a4 = zero
        a5 = zero
        a6 = zero
        a7 = zero
        b0 = zero
        b1 = zero
        b2 = zero
        b3 = zero
        b4 = zero
        b5 = zero
        b6 = zero
        b7 = zero
        m = mb + n0
        xi = xb
        j = U(0)
        while j + U(2) <= K:
            xj = x[xi]
            xk = x[xi + xs]
            a0 += xj * M[m]
            a1 += xj * M[m + U(1)]
            a2 += xj * M[m + U(2)]
            a3 += xj * M[m + U(3)]
            a4 += xj * M[m + U(4)]
            a5 += xj * M[m + U(5)]
            a6 += xj * M[m + U(6)]
            a7 += xj * M[m + U(7)]
            m2 = m + ldm
            b0 += xk * M[m2]
            b1 += xk * M[m2 + U(1)]
            b2 += xk * M[m2 + U(2)]
            b3 += xk * M[m2 + U(3)]
            b4 += xk * M[m2 + U(4)]
            b5 += xk * M[m2 + U(5)]
            b6 += xk * M[m2 + U(6)]
            b7 += xk * M[m2 + U(7)]
            m = m2 + ldm
            xi += xs + xs
            j += U(2)
        if j < K:
            xj = x[xi]
            a0 += xj * M[m]
            a1 += xj * M[m + U(1)]
            a2 += xj * M[m + U(2)]
            a3 += xj * M[m + U(3)]
            a4 += xj * M[m + U(4)]
            a5 += xj * M[m + U(5)]
            a6 += xj * M[m + U(6)]
            a7 += xj * M[m + U(7)]
        o = ob + n0
        out[o] += a0 + b0
        out[o + U(1)] += a1 + b1
        out[o + U(2)] += a2 + b2
        out[o + U(3)] += a3 + b3
        out[o + U(4)] += a4 + b4
        out[o + U(5)] += a5 + b5
        out[o + U(6)] += a6 + b6
        out[o + U(7)] += a7 + b7
        n0 += U(8)
    _vecmat_s_cols(x, xb, xs, K, M, mb, ldm, n0, N, out, ob, zero)


@njit(inline="always", **_JIT)
def _vecmat_s_cols(x, xb, xs, K, M, mb, ldm, n0, N, out, ob, zero):
    """The columns [n0, N) of _vecmat_s one at a time."""
    while n0 < N:
        a = zero
        m = mb + n0
        xi = xb
        for j in range(K):
            a += x[xi] * M[m]
            m += ldm
            xi += xs
        out[ob + n0] += a
        n0 += U(1)


# -- several tiles at once ----------------------------------------------------------------------
# A tile of 8 accumulators is a tuple (one vector register with SLP). The products of the small
# LSTM path are short (K = H or 4H terms) and one tile at a time cannot keep the FMA units busy:
# each tile is one dependency chain, so it waits ~4 cycles per term. Several tiles in one loop
# give independent chains and share the loads: the backward runs four rows of ``da W_hh`` and
# four rows of ``dW_hh`` at once (``_four_vecmat_s``), the forward the four gate blocks of two
# valid rows (``_gates4_vecmat_add2``; a lone valid row twice into the same place). Each tile's
# sum keeps the order of terms of the one-tile function it replaces, so the results are the same
# bits. W1 (H = 8), kernels alone: backward 0.47 -> 0.33 ms (float64), 0.31 -> 0.22 ms
# (float32); forward 8-12% with two rows (the loads, not the FMAs, had bound the one-row
# product). The price is compilation, once per machine (numba caches): the backward kernel
# ~18 s per dtype instead of ~12 s (SLP over 64 accumulators), the forward ~14 s instead of ~11.
# The remainders (H not a multiple of 8) run the one-column loops (``_vecmat_cols`` etc.) rather
# than whole one-tile functions, which would cost more compilation again.

@njit(inline="always", **_JIT)
def _z8(zero):
    return (zero, zero, zero, zero, zero, zero, zero, zero)


@njit(inline="always", **_JIT)
def _fma8(a, s, M, m):
    """a + s * M[m : m + 8] for a tile a of 8 accumulators."""
    return (a[0] + s * M[m], a[1] + s * M[m + U(1)], a[2] + s * M[m + U(2)],
            a[3] + s * M[m + U(3)], a[4] + s * M[m + U(4)], a[5] + s * M[m + U(5)],
            a[6] + s * M[m + U(6)], a[7] + s * M[m + U(7)])


@njit(inline="always", **_JIT)
def _set8(out, o, add, ab, a):
    """out[o : o + 8] = add[ab : ab + 8] + a, the eight loads before the first store (see
    "Conventions of the hot code" above)."""
    _sum8(out, o, (add[ab], add[ab + U(1)], add[ab + U(2)], add[ab + U(3)], add[ab + U(4)],
                   add[ab + U(5)], add[ab + U(6)], add[ab + U(7)]), a)


@njit(inline="always", **_JIT)
def _sum8(out, o, a, b):
    """out[o : o + 8] = a + b."""
    out[o] = a[0] + b[0]
    out[o + U(1)] = a[1] + b[1]
    out[o + U(2)] = a[2] + b[2]
    out[o + U(3)] = a[3] + b[3]
    out[o + U(4)] = a[4] + b[4]
    out[o + U(5)] = a[5] + b[5]
    out[o + U(6)] = a[6] + b[6]
    out[o + U(7)] = a[7] + b[7]


@njit(inline="always", **_JIT)
def _acc8(out, o, a, b):
    """out[o : o + 8] += a + b."""
    out[o] += a[0] + b[0]
    out[o + U(1)] += a[1] + b[1]
    out[o + U(2)] += a[2] + b[2]
    out[o + U(3)] += a[3] + b[3]
    out[o + U(4)] += a[4] + b[4]
    out[o + U(5)] += a[5] + b[5]
    out[o + U(6)] += a[6] + b[6]
    out[o + U(7)] += a[7] + b[7]


@njit(inline="always", **_JIT)
def _gates4_vecmat_add2(x, xb, xc, K, M, mb, ldm, H, add, ab, ac, out, ob, oc, os, zero):
    """_vecmat_add on the four gate blocks of two rows at once: for the rows r = 0 and 1, g < 4
    and n < H, out[ob + r*oc + g*os + n] =
    add[ab + r*ac + g*H + n] + sum_{j<K} x[xb + r*xc + j] * M[mb + j*ldm + g*H + n].
    Eight chains, each tile of M loaded once for both rows. xc = ac = oc = 0 computes one row
    (twice, into the same place). Four rows at once gained nothing over two."""
    H2 = U(2) * H
    H3 = U(3) * H
    n0 = U(0)
    while n0 + U(8) <= H:
        a0 = _z8(zero)
        a1 = _z8(zero)
        a2 = _z8(zero)
        a3 = _z8(zero)
        c0 = _z8(zero)
        c1 = _z8(zero)
        c2 = _z8(zero)
        c3 = _z8(zero)
        m = mb + n0
        for j in range(K):
            xj = x[xb + j]
            xk = x[xb + xc + j]
            a0 = _fma8(a0, xj, M, m)
            c0 = _fma8(c0, xk, M, m)
            a1 = _fma8(a1, xj, M, m + H)
            c1 = _fma8(c1, xk, M, m + H)
            a2 = _fma8(a2, xj, M, m + H2)
            c2 = _fma8(c2, xk, M, m + H2)
            a3 = _fma8(a3, xj, M, m + H3)
            c3 = _fma8(c3, xk, M, m + H3)
            m += ldm
        _set8(out, ob + n0, add, ab + n0, a0)
        _set8(out, ob + os + n0, add, ab + H + n0, a1)
        _set8(out, ob + U(2) * os + n0, add, ab + H2 + n0, a2)
        _set8(out, ob + U(3) * os + n0, add, ab + H3 + n0, a3)
        _set8(out, ob + oc + n0, add, ab + ac + n0, c0)
        _set8(out, ob + oc + os + n0, add, ab + ac + H + n0, c1)
        _set8(out, ob + oc + U(2) * os + n0, add, ab + ac + H2 + n0, c2)
        _set8(out, ob + oc + U(3) * os + n0, add, ab + ac + H3 + n0, c3)
        n0 += U(8)
    for g in range(U(4)):
        _vecmat_add_cols(x, xb, K, M, mb + g * H, ldm, n0, H, add, ab + g * H, out, ob + g * os,
                         zero)
        _vecmat_add_cols(x, xb + xc, K, M, mb + g * H, ldm, n0, H, add, ab + ac + g * H, out,
                         ob + oc + g * os, zero)


@njit(inline="always", **_JIT)
def _four_vecmat_s(x, xb, xc, xs, K, M, mb, ldm, N, out, ob, os, add_to, zero):
    """_vecmat_s on four strided vectors x[xb + c*xc + j*xs] (c < 4) at once: for n < N,
    out[ob + c*os + n] = (or += with ``add_to``) sum_{j<K} x[xb + c*xc + j*xs] * M[mb + j*ldm + n],
    even and odd j in two chains per tile, summed at the end, as in _vecmat (xs = 1) and
    _vecmat_s. Four rows of a row-major x: xc = the row stride, xs = 1; four columns: xc = 1,
    xs = the row stride. Each M row is loaded once for the four vectors."""
    n0 = U(0)
    while n0 + U(8) <= N:
        a0 = _z8(zero)
        a1 = _z8(zero)
        a2 = _z8(zero)
        a3 = _z8(zero)
        b0 = _z8(zero)
        b1 = _z8(zero)
        b2 = _z8(zero)
        b3 = _z8(zero)
        m = mb + n0
        xi = xb
        j = U(0)
        while j + U(2) <= K:
            m2 = m + ldm
            xk = xi + xs
            a0 = _fma8(a0, x[xi], M, m)
            a1 = _fma8(a1, x[xi + xc], M, m)
            a2 = _fma8(a2, x[xi + U(2) * xc], M, m)
            a3 = _fma8(a3, x[xi + U(3) * xc], M, m)
            b0 = _fma8(b0, x[xk], M, m2)
            b1 = _fma8(b1, x[xk + xc], M, m2)
            b2 = _fma8(b2, x[xk + U(2) * xc], M, m2)
            b3 = _fma8(b3, x[xk + U(3) * xc], M, m2)
            m = m2 + ldm
            xi = xk + xs
            j += U(2)
        if j < K:
            a0 = _fma8(a0, x[xi], M, m)
            a1 = _fma8(a1, x[xi + xc], M, m)
            a2 = _fma8(a2, x[xi + U(2) * xc], M, m)
            a3 = _fma8(a3, x[xi + U(3) * xc], M, m)
        if add_to:
            _acc8(out, ob + n0, a0, b0)
            _acc8(out, ob + os + n0, a1, b1)
            _acc8(out, ob + U(2) * os + n0, a2, b2)
            _acc8(out, ob + U(3) * os + n0, a3, b3)
        else:
            _sum8(out, ob + n0, a0, b0)
            _sum8(out, ob + os + n0, a1, b1)
            _sum8(out, ob + U(2) * os + n0, a2, b2)
            _sum8(out, ob + U(3) * os + n0, a3, b3)
        n0 += U(8)
    for c in range(U(4)):
        if not add_to:
            _fill(out, ob + c * os + n0, N - n0, zero)
        _vecmat_s_cols(x, xb + c * xc, xs, K, M, mb, ldm, n0, N, out, ob + c * os, zero)


# ----------------------------------------------------------------------------------------------
# Generalised LSTM
# ----------------------------------------------------------------------------------------------
# Flags (ints): ui, uf, uo = input/forget/output gate used; ag, ac = input/output activation;
# cp = coupled; fg = full gate recurrence; pe = peephole. clip <= 0 means no clipping.

@njit(inline="always", **_JIT)
def _lstm_fwd_row(xpf, xb, P, pb, Rr, rb, Csf, cb, cb1, Hsf, Gf, pcf, OUT, H, u0, L,
                  ui, uf, uo, ag, ac, cp, fg, pe, clip, one):
    """Units [u0, u0+L) of one row: preactivations xp[xb..] + P[pb..] (+ Rr[rb..] with FGR);
    writes Hs[cb1..], Cs[cb1..] and the gates [i, f, g, o] to G[xb..] (same layout as xp).
    Four passes, i; f; g; then c, o and h, for the reason given at ``_lstm_fwd_flat``: W2's
    forward kernels (T=100, B=64, H=256), float64 23.5 -> 20.4 ms, float32 14.7 -> 8.7 ms."""
    H2 = U(2) * H
    H3 = U(3) * H
    for l in range(L):
        u = u0 + l
        ai = xpf[xb + u] + P[pb + u]
        ai = ai + Rr[rb + u] if fg else ai
        ai = ai + pcf[u] * Csf[cb + u] if pe else ai
        si = _sigmoid(ai)
        OUT[l] = si if ui else one
    for l in range(L):
        u = u0 + l
        af = xpf[xb + H + u] + P[pb + H + u]
        af = af + Rr[rb + H + u] if fg else af
        af = af + pcf[H + u] * Csf[cb + u] if pe else af
        sf = _sigmoid(af)
        f = sf if uf else one
        OUT[_C1 + l] = (one - OUT[l]) if cp else f
    for l in range(L):
        u = u0 + l
        az = xpf[xb + H2 + u] + P[pb + H2 + u]
        tz = _tanh(az)
        OUT[_C2 + l] = tz if ag else az
    for l in range(L):
        u = u0 + l
        c = OUT[_C1 + l] * Csf[cb + u] + OUT[l] * OUT[_C2 + l]
        cc = min(max(c, -clip), clip)
        c = cc if clip > 0 else c
        ao = xpf[xb + H3 + u] + P[pb + H3 + u]
        ao = ao + Rr[rb + H2 + u] if fg else ao
        ao = ao + pcf[H2 + u] * c if pe else ao
        so = _sigmoid(ao)
        o = so if uo else one
        tc = _tanh(c)
        s = tc if ac else c
        OUT[_C3 + l] = o
        OUT[_C4 + l] = c
        OUT[_C5 + l] = o * s
    _copy(Gf, xb + u0, OUT, U(0), L)
    _copy(Gf, xb + H + u0, OUT, _C1, L)
    _copy(Gf, xb + H2 + u0, OUT, _C2, L)
    _copy(Gf, xb + H3 + u0, OUT, _C3, L)
    _copy(Csf, cb1 + u0, OUT, _C4, L)
    _copy(Hsf, cb1 + u0, OUT, _C5, L)


@njit(inline="always", **_JIT)
def _lstm_bwd_row(Gf, gb, Csf, cb, cb1, dYf, dh, hb, dc, dq, qb, pcf, OUT, dxpf, dpeep, db, H, u0,
                  L, ui, uf, uo, ag, ac, cp, fg, pe, clip, one):
    """Units [u0, u0+L) of one row of the BPTT step: dh[hb..] + dY[cb..] reaches h_t, dc[hb..]
    reaches c_t (replaced by the gradient reaching c_{t-1} before W_hh), dq[qb..] reaches
    [i, f, o]_t. Writes dxp[gb..] = [dz_i, dz_f, dz_g, dz_o]; accumulates dpeep (3H flat)."""
    H2 = U(2) * H
    H3 = U(3) * H
    zero = one - one
    for l in range(L):
        u = u0 + l
        i = Gf[gb + u]
        f = Gf[gb + H + u]
        z = Gf[gb + H2 + u]
        o = Gf[gb + H3 + u]
        c = Csf[cb1 + u]
        c0 = Csf[cb + u]
        dhu = dh[hb + u] + dYf[cb + u]
        dqi = dq[qb + u]
        dqf = dq[qb + H + u]
        dqo = dq[qb + H2 + u]
        p0 = pcf[u]
        p1 = pcf[H + u]
        p2 = pcf[H2 + u]
        tc = _tanh(c)
        s = tc if ac else c
        do = dhu * s
        do = do + dqo if fg else do
        ds = dhu * o
        dcc = dc[hb + u] + (ds * (one - s * s) if ac else ds)
        dzo = do * o * (one - o) if uo else zero
        dcc = dcc + dzo * p2 if pe else dcc
        dcl = dcc if abs(c) < clip else zero
        dcc = dcl if clip > 0 else dcc
        di = dcc * z
        df = dcc * c0
        di = di + dqi if fg else di
        df = df + dqf if fg else df
        dg = dcc * i
        dcp = dcc * f
        dzf0 = df * f * (one - f) if uf else zero
        dzf = zero if cp else dzf0
        di = di - df if cp else di
        dzi = di * i * (one - i) if ui else zero
        dzg = dg * (one - z * z) if ag else dg
        dcp = dcp + dzi * p0 + dzf * p1 if pe else dcp
        OUT[l] = dzi
        OUT[_C1 + l] = dzf
        OUT[_C2 + l] = dzg
        OUT[_C3 + l] = dzo
        OUT[_C4 + l] = dcp
        OUT[_C5 + l] = dzi * c0
        OUT[_C6 + l] = dzf * c0
        OUT[_C7 + l] = dzo * c
    _copy(dxpf, gb + u0, OUT, U(0), L)
    _copy(dxpf, gb + H + u0, OUT, _C1, L)
    _copy(dxpf, gb + H2 + u0, OUT, _C2, L)
    _copy(dxpf, gb + H3 + u0, OUT, _C3, L)
    _copy(dc, hb + u0, OUT, _C4, L)
    if pe:
        for l in range(L):
            dpeep[db + u0 + l] += OUT[_C5 + l]
        for l in range(L):
            dpeep[db + H + u0 + l] += OUT[_C6 + l]
        for l in range(L):
            dpeep[db + H2 + u0 + l] += OUT[_C7 + l]


# -- small path: vectorised loops per step over a chunk of rows --------------------------------
# The batch is processed in chunks of NB = CAPF // H rows; per chunk the preactivations and
# peephole weights sit gate-major in scratch arrays (segment stride CAPF, a compile-time
# constant), so the elementwise loops run over nb*H cells instead of once per row. The gates
# G are gate-major too, (T, 4, B, H): the forward's loop writes them in place and the backward's
# reads them there (copying them to and from a (T, B, 4H) G row by row took 0.09 ms of the W1
# forward's 0.43 and 0.03 ms of its backward, float64). Only the (B, 4H) layouts of xp and dxp
# need short per-row loops (the products and a copy).

CAPF = 1024
_F1 = U(CAPF)
_F2 = U(2 * CAPF)
_F3 = U(3 * CAPF)
_F4 = U(4 * CAPF)
_F5 = U(5 * CAPF)
_F6 = U(6 * CAPF)
_F7 = U(7 * CAPF)


@njit(inline="always", **_JIT)
def _rep_peep(pcf, H, NB, dtype):
    """(3 * CAPF) peephole weights repeated over NB rows: PCR[g*CAPF + j*H + u] = pc[g, u]
    (beyond NB*H in each segment: never read, left unset)."""
    PCR = np.empty(3 * CAPF, dtype=dtype)
    for g in range(U(3)):
        for j in range(NB):
            _copy(PCR, g * _F1 + j * H, pcf, g * H, H)
    return PCR


@njit(inline="always", **_JIT)
def _segments(nseg, n, zero):
    """Scratch of nseg segments of CAPF elements, the first n of each zero (the loops touch no
    more than NB*H = n of a segment; zeroing all of it cost ~0.6 MB of memset per W1 iteration)."""
    a = np.empty(nseg * CAPF, dtype=type(zero))
    for g in range(U(nseg)):
        _fill(a, g * _F1, n, zero)
    return a


@njit(inline="always", **_JIT)
def _lstm_fwd_flat(PG, RRG, PCR, Csf, cb0, Gf, gb, gs, OUT, n, ui, uf, uo, ag, ac, cp, fg, pe,
                   clip, one):
    """Cells [0, n) of a chunk: preactivations PG (gate-major, both biases and h W^T included),
    RRG the FGR term, c_prev = Cs[cb0 + k]. The gates i, f, g, o go to Gf[gb + j*gs + k] (j < 4),
    c and h to OUT (segments 4, 5); segments 0..2 hold i, f, g in between.

    Four passes over the cells instead of one: i; f; g; then c, o and h. As one loop of five
    exp-based functions the body was ~240 vector instructions per 8 cells with a dependency
    chain (sigma(a_f) -> c -> sigma(a_o + w_co c) -> h) of ~180 cycles, more than the core's
    out-of-order window overlaps, so it ran at the chain's latency; short passes of independent
    cells run at the arithmetic's throughput. W1 forward kernel, float64 0.38 -> 0.33 ms,
    float32 0.19 -> 0.17 ms."""
    for k in range(n):
        ai = PG[k]
        if fg:
            ai = ai + RRG[k]
        if pe:
            ai = ai + PCR[k] * Csf[cb0 + k]
        si = _sigmoid(ai)
        OUT[k] = si if ui else one
    for k in range(n):
        af = PG[_F1 + k]
        if fg:
            af = af + RRG[_F1 + k]
        if pe:
            af = af + PCR[_F1 + k] * Csf[cb0 + k]
        sf = _sigmoid(af)
        f = sf if uf else one
        OUT[_F1 + k] = (one - OUT[k]) if cp else f
    for k in range(n):
        az = PG[_F2 + k]
        tz = _tanh(az)
        OUT[_F2 + k] = tz if ag else az
    for k in range(n):
        i = OUT[k]
        f = OUT[_F1 + k]
        z = OUT[_F2 + k]
        c = f * Csf[cb0 + k] + i * z
        cc = min(max(c, -clip), clip)
        c = cc if clip > 0 else c
        ao = PG[_F3 + k]
        if fg:
            ao = ao + RRG[_F2 + k]
        if pe:
            ao = ao + PCR[_F2 + k] * c
        so = _sigmoid(ao)
        o = so if uo else one
        tc = _tanh(c)
        s = tc if ac else c
        Gf[gb + k] = i
        Gf[gb + gs + k] = f
        Gf[gb + U(2) * gs + k] = z
        Gf[gb + U(3) * gs + k] = o
        OUT[_F4 + k] = c
        OUT[_F5 + k] = o * s


@njit(inline="always", **_JIT)
def _lstm_bwd_flat(GG, ggb, ggs, DQG, PCR, Csf, cb0, cb1, dYf, dhf, dcf, hb0, OUT, DPACC, n,
                   ui, uf, uo, ag, ac, cp, fg, pe, clip, one):
    """Cells [0, n) of a chunk of the BPTT step: gate j of [i, f, g, o] at GG[ggb + j*ggs + k],
    dq DQG gate-major; c_{t-1} at Cs[cb0 + k], c_t at Cs[cb1 + k], dY at [cb0 + k], dh and dc at
    [hb0 + k]. OUT gets dz_i, dz_f, dz_g, dz_o and the gradient reaching c_{t-1} before W_hh
    (0..4); the peephole products dz_i c_{t-1}, dz_f c_{t-1}, dz_o c_t are added to DPACC
    (segments 0..2)."""
    zero = one - one
    for k in range(n):
        i = GG[ggb + k]
        f = GG[ggb + ggs + k]
        z = GG[ggb + U(2) * ggs + k]
        o = GG[ggb + U(3) * ggs + k]
        c = Csf[cb1 + k]
        c0 = Csf[cb0 + k]
        dhu = dhf[hb0 + k] + dYf[cb0 + k]
        tc = _tanh(c)
        s = tc if ac else c
        do = dhu * s
        if fg:
            do = do + DQG[_F2 + k]
        ds = dhu * o
        dcc = dcf[hb0 + k] + (ds * (one - s * s) if ac else ds)
        dzo = do * o * (one - o) if uo else zero
        if pe:
            dcc = dcc + dzo * PCR[_F2 + k]
        dcl = dcc if abs(c) < clip else zero
        dcc = dcl if clip > 0 else dcc
        di = dcc * z
        df = dcc * c0
        if fg:
            di = di + DQG[k]
            df = df + DQG[_F1 + k]
        dg = dcc * i
        dcp = dcc * f
        dzf0 = df * f * (one - f) if uf else zero
        dzf = zero if cp else dzf0
        di = di - df if cp else di
        dzi = di * i * (one - i) if ui else zero
        dzg = dg * (one - z * z) if ag else dg
        if pe:
            dcp = dcp + dzi * PCR[k] + dzf * PCR[_F1 + k]
        OUT[k] = dzi
        OUT[_F1 + k] = dzf
        OUT[_F2 + k] = dzg
        OUT[_F3 + k] = dzo
        OUT[_F4 + k] = dcp
    if pe:                       # a loop of its own: inside the one above it cost W1's backward
        for k in range(n):       # ~5% (float32 0.194 -> 0.178-0.185 ms), the same bits
            DPACC[k] += OUT[k] * Csf[cb0 + k]
            DPACC[_F1 + k] += OUT[_F1 + k] * Csf[cb0 + k]
            DPACC[_F2 + k] += OUT[_F3 + k] * Csf[cb1 + k]


@njit(inline="always", **_JIT)
def _has_padding(mask, b_lo, b_hi):
    """Whether a row in [b_lo, b_hi) has a padded step (mask 0). Without padding the small
    kernels skip their per-row mask checks, which took W1's forward kernel ~7% (0.33 -> 0.31 ms,
    float64): a scan of T*B values once per call instead."""
    for t in range(mask.shape[0]):
        for b in range(b_lo, b_hi):
            if mask[t, b] == 0:
                return True
    return False


@njit(**_JIT)
def lstm_fwd_small(xp, WT, pc, RT, mask, Hs, Cs, G, ui, uf, uo, ag, ac, cp, fg, pe, clip, one,
                   b_lo, b_hi):
    """Whole-sequence LSTM forward with the recurrent products in compiled loops, for the batch
    rows [b_lo, b_hi) (rows are independent, so row ranges may run on different threads).

    xp (T, B, 4H); WT = W_hh^T (H, 4H); pc (3, H); RT = R^T (3H, 3H) (any shape without FGR);
    mask (T, B) of 0/1; Hs, Cs (T+1, B, H) with [0] filled on entry; G (T, 4, B, H), the gates
    [i, f, g, o] gate-major, is written.
    """
    T = U(xp.shape[0])
    B = U(xp.shape[1])
    H4 = U(xp.shape[2])
    H = H4 // U(4)
    H2 = U(2) * H
    H3 = U(3) * H
    zero = one - one
    b_lo = U(b_lo)
    b_hi = U(b_hi)
    NB = max(U(1), min(b_hi - b_lo, U(CAPF) // H))
    xpf = xp.reshape(-1)
    Hsf = Hs.reshape(-1)
    Csf = Cs.reshape(-1)
    Gf = G.reshape(-1)
    WTf = WT.reshape(-1)
    RTf = RT.reshape(-1)
    PCR = _rep_peep(pc.reshape(-1), H, NB, xp.dtype)
    PG = _segments(4, NB * H, zero)              # masked rows leave theirs unwritten
    RRG = _segments(3, NB * H, zero)
    OUT = np.empty(6 * CAPF, dtype=xp.dtype)     # each segment written before it is read
    BH = B * H
    padded = _has_padding(mask, b_lo, b_hi)
    for t in range(T):
        b0 = b_lo
        while b0 < b_hi:
            nb = min(NB, b_hi - b0)
            # PG = xp + h_prev W_hh^T, gate-major; two valid rows at a time (a lone one: twice)
            j = U(0)
            while j < nb:
                if padded and mask[t, b0 + j] == 0:
                    j += U(1)
                    continue
                k = j + U(1)
                while padded and k < nb and mask[t, b0 + k] == 0:
                    k += U(1)
                if k == nb:
                    k = j
                d = k - j
                _gates4_vecmat_add2(Hsf, (t * B + b0 + j) * H, d * H, H, WTf, U(0), H4, H, xpf,
                                    (t * B + b0 + j) * H4, d * H4, PG, j * H, d * H, _F1, zero)
                j = k + U(1)
            if fg:                                       # RRG = q_prev R^T, q = [i, f, o]_{t-1}
                for j in range(nb):
                    b = b0 + j
                    if mask[t, b] == 0:
                        continue
                    ro = j * H
                    for g in range(U(3)):
                        _fill(RRG, g * _F1 + ro, H, zero)
                        if t > U(0):
                            gp = (t - U(1)) * U(4) * BH + b * H      # i_{t-1} of row b
                            _vecmat(Gf, gp, H, RTf, g * H, H3, H, RRG, g * _F1 + ro, zero)
                            _vecmat(Gf, gp + BH, H, RTf, H * H3 + g * H, H3, H, RRG,
                                    g * _F1 + ro, zero)
                            _vecmat(Gf, gp + U(3) * BH, H, RTf, H2 * H3 + g * H, H3, H, RRG,
                                    g * _F1 + ro, zero)
            cb0 = (t * B + b0) * H
            gb0 = t * U(4) * BH + b0 * H                 # G[t, 0, b0]
            # fg and pe become compile-time constants in each inlined copy, so a cell without
            # peepholes or gate recurrence does not load (or add) their zeros
            if fg:
                if pe:
                    _lstm_fwd_flat(PG, RRG, PCR, Csf, cb0, Gf, gb0, BH, OUT, nb * H, ui, uf, uo,
                                   ag, ac, cp, True, True, clip, one)
                else:
                    _lstm_fwd_flat(PG, RRG, PCR, Csf, cb0, Gf, gb0, BH, OUT, nb * H, ui, uf, uo,
                                   ag, ac, cp, True, False, clip, one)
            elif pe:
                _lstm_fwd_flat(PG, RRG, PCR, Csf, cb0, Gf, gb0, BH, OUT, nb * H, ui, uf, uo,
                               ag, ac, cp, False, True, clip, one)
            else:
                _lstm_fwd_flat(PG, RRG, PCR, Csf, cb0, Gf, gb0, BH, OUT, nb * H, ui, uf, uo,
                               ag, ac, cp, False, False, clip, one)
            _copy(Csf, cb0 + BH, OUT, _F4, nb * H)
            _copy(Hsf, cb0 + BH, OUT, _F5, nb * H)
            for j in range(nb if padded else U(0)):
                b = b0 + j
                if mask[t, b] == 0:                      # padding: carry state and gates
                    cb = (t * B + b) * H
                    _copy(Hsf, cb + BH, Hsf, cb, H)
                    _copy(Csf, cb + BH, Csf, cb, H)
                    for g in range(U(4)):
                        gb = gb0 + g * BH + j * H
                        if t > U(0):
                            _copy(Gf, gb, Gf, gb - U(4) * BH, H)
                        else:
                            _fill(Gf, gb, H, zero)
            b0 += nb


@njit(**_JIT)
def lstm_bwd_small(Hs, Cs, G, W, pc, R, mask, dY, dh, dc, dxp, dpeep, dW, ui, uf, uo, ag, ac, cp,
                   fg, pe, clip, one, b_lo, b_hi):
    """Whole-sequence LSTM BPTT with the recurrent products in compiled loops, for the batch rows
    [b_lo, b_hi); dpeep and dW receive those rows' contributions only.

    G (T, 4, B, H) gate-major as the forward wrote it; W = W_hh (4H, H); R (3H, 3H) (any shape
    without FGR). dh, dc (B, H): on entry the gradient of the final state, on exit that of the
    initial state. dxp (T, B, 4H) is written; dpeep (3, H) and dW (4H, H) (= sum_t da_t^T
    h_{t-1}, here rather than in one BLAS call after the loop, which on a busy two-core machine
    can wait a scheduler tick for its second thread) accumulated.
    """
    T = U(dY.shape[0])
    B = U(dY.shape[1])
    H = U(dY.shape[2])
    H4 = U(4) * H
    H3 = U(3) * H
    zero = one - one
    b_lo = U(b_lo)
    b_hi = U(b_hi)
    NB = max(U(1), min(b_hi - b_lo, U(CAPF) // H))
    Hsf = Hs.reshape(-1)
    dWf = dW.reshape(-1)
    Csf = Cs.reshape(-1)
    Gf = G.reshape(-1)
    Wf = W.reshape(-1)
    Rf = R.reshape(-1)
    dYf = dY.reshape(-1)
    dhf = dh.reshape(-1)
    dcf = dc.reshape(-1)
    dxpf = dxp.reshape(-1)
    dpf = dpeep.reshape(-1)
    PCR = _rep_peep(pc.reshape(-1), H, NB, dY.dtype)
    GG = np.empty(4 * CAPF, dtype=dY.dtype)      # these three are written before they are read
    DQG = np.empty(3 * CAPF, dtype=dY.dtype)
    OUT = np.empty(5 * CAPF, dtype=dY.dtype)
    DPACC = _segments(3, NB * H, zero)
    dq = np.zeros(B * H3, dtype=dY.dtype)
    BH = B * H
    any_padded = _has_padding(mask, b_lo, b_hi)
    for tt in range(T):
        t = T - U(1) - tt
        b0 = b_lo
        while b0 < b_hi:
            nb = min(NB, b_hi - b0)
            gsrc = Gf                                    # the chunk's gates: read in place,
            ggb = t * U(4) * BH + b0 * H
            ggs = BH
            padded = False
            for j in range(nb if any_padded else U(0)):
                padded = padded or mask[t, b0 + j] == 0
            if padded:                                   # or copied with zeros on padding rows
                for g in range(U(4)):
                    _copy(GG, g * _F1, Gf, ggb + g * BH, nb * H)
                for j in range(nb):
                    if mask[t, b0 + j] == 0:
                        for g in range(U(4)):
                            _fill(GG, g * _F1 + j * H, H, zero)
                gsrc = GG
                ggb = U(0)
                ggs = _F1
            if fg:                                       # dq gate-major (zeros on padding)
                for j in range(nb):
                    b = b0 + j
                    for g in range(U(3)):
                        if mask[t, b] != 0:
                            _copy(DQG, g * _F1 + j * H, dq, b * H3 + g * H, H)
                        else:
                            _fill(DQG, g * _F1 + j * H, H, zero)
            cb0 = (t * B + b0) * H
            cb1 = cb0 + B * H
            hb0 = b0 * H
            if fg:
                if pe:
                    _lstm_bwd_flat(gsrc, ggb, ggs, DQG, PCR, Csf, cb0, cb1, dYf, dhf, dcf, hb0,
                                   OUT, DPACC, nb * H, ui, uf, uo, ag, ac, cp, True, True,
                                   clip, one)
                else:
                    _lstm_bwd_flat(gsrc, ggb, ggs, DQG, PCR, Csf, cb0, cb1, dYf, dhf, dcf, hb0,
                                   OUT, DPACC, nb * H, ui, uf, uo, ag, ac, cp, True, False,
                                   clip, one)
            elif pe:
                _lstm_bwd_flat(gsrc, ggb, ggs, DQG, PCR, Csf, cb0, cb1, dYf, dhf, dcf, hb0,
                               OUT, DPACC, nb * H, ui, uf, uo, ag, ac, cp, False, True,
                               clip, one)
            else:
                _lstm_bwd_flat(gsrc, ggb, ggs, DQG, PCR, Csf, cb0, cb1, dYf, dhf, dcf, hb0,
                               OUT, DPACC, nb * H, ui, uf, uo, ag, ac, cp, False, False,
                               clip, one)
            for j in range(nb):
                b = b0 + j
                gb = (t * B + b) * H4
                ro = j * H
                for g in range(U(4)):                    # dxp (zero on padding rows)
                    _copy_short(dxpf, gb + g * H, OUT, g * _F1 + ro, H)
                if not padded or mask[t, b] != 0:        # padding rows keep dc, dh, dq
                    _copy_short(dcf, b * H, OUT, _F4 + ro, H)
            j = U(0)
            while j < nb:                                # dh_prev = da W_hh, four rows at a time
                b = b0 + j
                gb = (t * B + b) * H4
                if j + U(4) <= nb and (not padded or (
                        mask[t, b] != 0 and mask[t, b + U(1)] != 0
                        and mask[t, b + U(2)] != 0 and mask[t, b + U(3)] != 0)):
                    _four_vecmat_s(dxpf, gb, H4, U(1), H4, Wf, U(0), H, H, dhf, b * H, H, False,
                                   zero)
                    j += U(4)
                    continue
                if mask[t, b] != 0:
                    _fill(dhf, b * H, H, zero)
                    _vecmat(dxpf, gb, H4, Wf, U(0), H, H, dhf, b * H, zero)
                j += U(1)
            if fg:                                       # dq_prev = [dz_i, dz_f, dz_o] R
                for j in range(nb):
                    b = b0 + j
                    if mask[t, b] == 0:
                        continue
                    gb = (t * B + b) * H4
                    _fill(dq, b * H3, H3, zero)
                    _vecmat(dxpf, gb, U(2) * H, Rf, U(0), H3, H3, dq, b * H3, zero)
                    _vecmat(dxpf, gb + H3, H, Rf, U(2) * H * H3, H3, H3, dq, b * H3, zero)
            b0 += nb
        k = U(0)
        while k < H4:                                    # dW_hh += da_t^T h_{t-1}, 4 rows at once
            _four_vecmat_s(dxpf, (t * B + b_lo) * H4 + k, U(1), H4, b_hi - b_lo, Hsf,
                           (t * B + b_lo) * H, H, H, dWf, k * H, H, True, zero)
            k += U(4)
    for g in range(U(3)):                                # dpeep = sum over the batch rows
        for j in range(NB):
            for u in range(H):
                dpf[g * H + u] += DPACC[g * _F1 + j * H + u]


# -- the small path on several threads: batch parts in a prange ------------------------------
# The parts (row ranges, ``bounds[p]:bounds[p+1]``) are fixed by the batch size alone, and each
# part has its own dpeep and dW accumulator, summed in part order by the caller: results do not
# depend on the number of threads. Without threads the caller runs the backward's parts one by
# one and the forward as one call over the whole batch (its rows are independent: the same bits).

_JIT_PAR = dict(_JIT, parallel=True)


@njit(**_JIT_PAR)
def lstm_fwd_parts(bounds, xp, WT, pc, RT, mask, Hs, Cs, G, ui, uf, uo, ag, ac, cp, fg, pe, clip,
                   one):
    """:func:`lstm_fwd_small` on every part, the parts spread over numba's threads."""
    for p in prange(bounds.shape[0] - 1):
        lstm_fwd_small(xp, WT, pc, RT, mask, Hs, Cs, G, ui, uf, uo, ag, ac, cp, fg, pe, clip, one,
                       bounds[p], bounds[p + 1])


@njit(**_JIT_PAR)
def lstm_bwd_parts(bounds, Hs, Cs, G, W, pc, R, mask, dY, dh, dc, dxp, dpeeps, dWs, ui, uf, uo,
                   ag, ac, cp, fg, pe, clip, one):
    """:func:`lstm_bwd_small` on every part (part p accumulates into dpeeps[p] and dWs[p]), the
    parts spread over numba's threads."""
    for p in prange(bounds.shape[0] - 1):
        lstm_bwd_small(Hs, Cs, G, W, pc, R, mask, dY, dh, dc, dxp, dpeeps[p], dWs[p], ui, uf, uo,
                       ag, ac, cp, fg, pe, clip, one, bounds[p], bounds[p + 1])


@njit(**_JIT)
def lstm_fwd_step(t, xp, PB, rq, mask, Hs, Cs, G, pc, OUT, ui, uf, uo, ag, ac, cp, fg, pe, clip,
                  one, b0, b1):
    """One step of the large path for the rows [b0, b1): PB (B, 4H) = h_prev W_hh^T (BLAS); rq
    (B, 3H) = q_prev R^T with FGR (else any array of at least 3H elements). Rows are independent,
    so calls on disjoint row ranges may run at once (:func:`_lstm_fwd_team`)."""
    t = U(t)
    B = U(xp.shape[1])
    H4 = U(xp.shape[2])
    H = H4 // U(4)
    H3 = U(3) * H
    zero = one - one
    xpf = xp.reshape(-1)
    PBf = PB.reshape(-1)
    rqf = rq.reshape(-1)
    Hsf = Hs.reshape(-1)
    Csf = Cs.reshape(-1)
    Gf = G.reshape(-1)
    pcf = pc.reshape(-1)
    for b in range(U(b0), U(b1)):
        gb = (t * B + b) * H4
        cb = (t * B + b) * H
        cb1 = cb + B * H
        if mask[t, b] == 0:
            _copy(Hsf, cb1, Hsf, cb, H)
            _copy(Csf, cb1, Csf, cb, H)
            if t > U(0):
                _copy(Gf, gb, Gf, gb - B * H4, H4)
            else:
                _fill(Gf, gb, H4, zero)
            continue
        rb = b * H3 if fg else U(0)
        u0 = U(0)
        while u0 < H:
            L = min(_CAP, H - u0)
            _lstm_fwd_row(xpf, gb, PBf, b * H4, rqf, rb, Csf, cb, cb1, Hsf, Gf, pcf, OUT, H, u0, L,
                          ui, uf, uo, ag, ac, cp, fg, pe, clip, one)
            u0 += L


@njit(**_JIT)
def lstm_bwd_step(t, G, Cs, mask, dY, dh, dc, dq, mm, mq, dxp, dpeep, pc, OUT, ui, uf, uo, ag, ac,
                  cp, fg, pe, clip, one, b0, b1):
    """One step of the large path's BPTT for the rows [b0, b1) (independent rows, as in
    :func:`lstm_fwd_step`). ``dpeep`` is (B, 3H): each row accumulates its own peephole gradient
    (no shared accumulator); the caller sums over the rows at the end.

    First the rows valid at step t+1 take the BLAS products of that step: ``dh = mm``
    (= da_{t+1} W_hh) and ``dq = mq``; then dxp[t] is computed for the rows valid at step t
    (zero elsewhere) with their new dc. The caller then forms ``mm = dxp[t] W_hh``.
    """
    t = U(t)
    T = U(dY.shape[0])
    B = U(dY.shape[1])
    H = U(dY.shape[2])
    H4 = U(4) * H
    H3 = U(3) * H
    zero = one - one
    Gf = G.reshape(-1)
    Csf = Cs.reshape(-1)
    dYf = dY.reshape(-1)
    dhf = dh.reshape(-1)
    dcf = dc.reshape(-1)
    dqf = dq.reshape(-1)
    mmf = mm.reshape(-1)
    mqf = mq.reshape(-1)
    dxpf = dxp.reshape(-1)
    dpf = dpeep.reshape(-1)
    pcf = pc.reshape(-1)
    for b in range(U(b0), U(b1)):
        hb = b * H
        qb = b * H3
        if t + U(1) < T:
            if mask[t + U(1), b] != 0:
                _copy(dhf, hb, mmf, hb, H)
                if fg:
                    _copy(dqf, qb, mqf, qb, H3)
        gb = (t * B + b) * H4
        cb = (t * B + b) * H
        cb1 = cb + B * H
        if mask[t, b] == 0:
            _fill(dxpf, gb, H4, zero)
            continue
        u0 = U(0)
        while u0 < H:
            L = min(_CAP, H - u0)
            _lstm_bwd_row(Gf, gb, Csf, cb, cb1, dYf, dhf, hb, dcf, dqf, qb, pcf, OUT, dxpf, dpf,
                          qb, H, u0, L, ui, uf, uo, ag, ac, cp, fg, pe, clip, one)
            u0 += L


# ----------------------------------------------------------------------------------------------
# LSTM large-path steps on a caller's OpenMP team
# ----------------------------------------------------------------------------------------------
# The PyTorch front end runs each step's elementwise kernel on torch's own OpenMP threads, the
# ones that have just made the step's matrix product and are still spinning, through libgomp's
# ``GOMP_parallel(fn, data, threads, 0)`` (what ``#pragma omp parallel`` compiles to; see
# ``_api.OpenMPTeam``). ``fn`` is a C callback made from ``lstm_fwd_team32`` etc. (``_api``
# compiles them with ``numba.cfunc`` on first use); ``data`` is an int64 block of TEAM_BLOCK slots:
#
#   0 a counter (0 before the call), 1 parts, 2 t, 3 T, 4 B, 5 H, 6 the spec's eight flags as bits
#   (ui, uf, uo, ag, ac, cp, fg, pe from bit 0), 7 the rows of rq / dq / mq, 8 the address of
#   [clip, one], 9 of the OUT scratch (parts, NSEG * CAP), from 10 the addresses of the step's
#   arrays in the order of its arguments (C-contiguous, the compute dtype).
#
# Every thread claims parts (rows [B p / parts, B (p + 1) / parts)) from the counter until none is
# left, so a team smaller than asked for still does every part. The rows are independent, so the
# results are the same bits as one sequential call.

TEAM_BLOCK = 24


@intrinsic
def _address_as(typingctx, addr, like):
    """The integer ``addr`` as a pointer to ``like``'s type (the first argument of ``carray``)."""
    if not isinstance(addr, types.Integer):
        return None
    sig = types.CPointer(like)(addr, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@intrinsic
def _claim(typingctx, block):
    """Atomically add 1 to ``block[0]`` (an int64 array) and return the value before."""
    if not (isinstance(block, types.Array) and block.dtype == types.int64):
        return None
    sig = types.int64(block)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", a.data, ir.Constant(ir.IntType(64), 1), "seq_cst")
    return sig, codegen


@njit(**_JIT)
def _lstm_fwd_team(a, one):
    """:func:`lstm_fwd_step` over the parts this thread claims; ``a`` the block, ``one`` the
    dtype's 1 (its type picks the arrays' dtype)."""
    T, B, H, fl, parts = a[3], a[4], a[5], a[6], a[1]
    sc = carray(_address_as(a[8], one), (2,))                              # clip, one
    outs = carray(_address_as(a[9], one), (parts, NSEG * CAP))
    xp = carray(_address_as(a[10], one), (T, B, 4 * H))
    PB = carray(_address_as(a[11], one), (B, 4 * H))
    rq = carray(_address_as(a[12], one), (a[7], 3 * H))
    mask = carray(_address_as(a[13], one), (T, B))
    Hs = carray(_address_as(a[14], one), (T + 1, B, H))
    Cs = carray(_address_as(a[15], one), (T + 1, B, H))
    G = carray(_address_as(a[16], one), (T, B, 4 * H))
    pc = carray(_address_as(a[17], one), (3, H))
    p = _claim(a)
    while p < parts:
        lstm_fwd_step(a[2], xp, PB, rq, mask, Hs, Cs, G, pc, outs[p], fl & 1, (fl >> 1) & 1,
                      (fl >> 2) & 1, (fl >> 3) & 1, (fl >> 4) & 1, (fl >> 5) & 1, (fl >> 6) & 1,
                      (fl >> 7) & 1, sc[0], sc[1], B * p // parts, B * (p + 1) // parts)
        p = _claim(a)


@njit(**_JIT)
def _lstm_bwd_team(a, one):
    """:func:`lstm_bwd_step` over the parts this thread claims (as :func:`_lstm_fwd_team`)."""
    T, B, H, fl, parts = a[3], a[4], a[5], a[6], a[1]
    sc = carray(_address_as(a[8], one), (2,))
    outs = carray(_address_as(a[9], one), (parts, NSEG * CAP))
    G = carray(_address_as(a[10], one), (T, B, 4 * H))
    Cs = carray(_address_as(a[11], one), (T + 1, B, H))
    mask = carray(_address_as(a[12], one), (T, B))
    dY = carray(_address_as(a[13], one), (T, B, H))
    dh = carray(_address_as(a[14], one), (B, H))
    dc = carray(_address_as(a[15], one), (B, H))
    dq = carray(_address_as(a[16], one), (a[7], 3 * H))
    mm = carray(_address_as(a[17], one), (B, H))
    mq = carray(_address_as(a[18], one), (a[7], 3 * H))
    dxp = carray(_address_as(a[19], one), (T, B, 4 * H))
    dpeep = carray(_address_as(a[20], one), (B, 3 * H))
    pc = carray(_address_as(a[21], one), (3, H))
    p = _claim(a)
    while p < parts:
        lstm_bwd_step(a[2], G, Cs, mask, dY, dh, dc, dq, mm, mq, dxp, dpeep, pc, outs[p], fl & 1,
                      (fl >> 1) & 1, (fl >> 2) & 1, (fl >> 3) & 1, (fl >> 4) & 1, (fl >> 5) & 1,
                      (fl >> 6) & 1, (fl >> 7) & 1, sc[0], sc[1], B * p // parts,
                      B * (p + 1) // parts)
        p = _claim(a)


# The C callbacks' bodies, ``void fn(void *data)``, one per dtype (``_api`` wraps them in
# ``numba.cfunc``).

def lstm_fwd_team32(data):
    _lstm_fwd_team(carray(data, (TEAM_BLOCK,), dtype=np.int64), np.float32(1))


def lstm_fwd_team64(data):
    _lstm_fwd_team(carray(data, (TEAM_BLOCK,), dtype=np.int64), np.float64(1))


def lstm_bwd_team32(data):
    _lstm_bwd_team(carray(data, (TEAM_BLOCK,), dtype=np.int64), np.float32(1))


def lstm_bwd_team64(data):
    _lstm_bwd_team(carray(data, (TEAM_BLOCK,), dtype=np.int64), np.float64(1))


# ----------------------------------------------------------------------------------------------
# GRU (PyTorch's equations)
# ----------------------------------------------------------------------------------------------

@njit(inline="always", **_JIT)
def _gru_fwd_row(xpf, xb, P, pb, bh, Hsf, cb, cb1, Gf, HPnf, OUT, H, u0, L, valid, one):
    """P[pb..] (3H) = h_prev W_hh^T without b_hh. Writes G[xb..] = [r, z, n], HPn[cb..] = hp_n
    and Hs[cb1..] (h_prev where the row is padding)."""
    H2 = U(2) * H
    for l in range(L):
        u = u0 + l
        pr = P[pb + u] + bh[u]
        pz = P[pb + H + u] + bh[H + u]
        pn = P[pb + H2 + u] + bh[H2 + u]
        r = _sigmoid(xpf[xb + u] + pr)
        z = _sigmoid(xpf[xb + H + u] + pz)
        n = _tanh(xpf[xb + H2 + u] + r * pn)
        h0 = Hsf[cb + u]
        h = (one - z) * n + z * h0
        OUT[l] = r
        OUT[_C1 + l] = z
        OUT[_C2 + l] = n
        OUT[_C3 + l] = pn
        OUT[_C4 + l] = h if valid else h0
    _copy(Gf, xb + u0, OUT, U(0), L)
    _copy(Gf, xb + H + u0, OUT, _C1, L)
    _copy(Gf, xb + H2 + u0, OUT, _C2, L)
    _copy(HPnf, cb + u0, OUT, _C3, L)
    _copy(Hsf, cb1 + u0, OUT, _C4, L)


@njit(inline="always", **_JIT)
def _gru_bwd_row(Hsf, cb, Gf, gb, HPnf, dYf, dh, hb, dhz, dxpf, DHPf, OUT, H, u0, L, one):
    """dh[hb..] + dY[cb..] reaches h_t. Writes dxp[gb..] = [dz_r, dz_z, dz_n], DHP[gb..] =
    [dz_r, dz_z, dz_n r] (gradient of h_prev W_hh^T + b_hh) and dhz[hb..] = dh z."""
    H2 = U(2) * H
    for l in range(L):
        u = u0 + l
        r = Gf[gb + u]
        z = Gf[gb + H + u]
        n = Gf[gb + H2 + u]
        d = dh[hb + u] + dYf[cb + u]
        dn = d * (one - z)
        dz = d * (Hsf[cb + u] - n)
        dzn = dn * (one - n * n)
        dzr = dzn * HPnf[cb + u] * r * (one - r)
        dzz = dz * z * (one - z)
        OUT[l] = dzr
        OUT[_C1 + l] = dzz
        OUT[_C2 + l] = dzn
        OUT[_C3 + l] = dzn * r
        OUT[_C4 + l] = d * z
    _copy(dxpf, gb + u0, OUT, U(0), L)
    _copy(dxpf, gb + H + u0, OUT, _C1, L)
    _copy(dxpf, gb + H2 + u0, OUT, _C2, L)
    _copy(DHPf, gb + u0, OUT, U(0), L)
    _copy(DHPf, gb + H + u0, OUT, _C1, L)
    _copy(DHPf, gb + H2 + u0, OUT, _C3, L)
    _copy(dhz, hb + u0, OUT, _C4, L)


@njit(**_JIT)
def gru_fwd_small(xp, WT, bh, mask, Hs, G, HPn, one):
    T = U(xp.shape[0])
    B = U(xp.shape[1])
    H3 = U(xp.shape[2])
    H = H3 // U(3)
    zero = one - one
    xpf = xp.reshape(-1)
    WTf = WT.reshape(-1)
    Hsf = Hs.reshape(-1)
    Gf = G.reshape(-1)
    HPnf = HPn.reshape(-1)
    P = np.empty(H3, dtype=xp.dtype)
    OUT = np.empty(NSEG * CAP, dtype=xp.dtype)
    for t in range(T):
        for b in range(B):
            gb = (t * B + b) * H3
            cb = (t * B + b) * H
            _fill(P, U(0), H3, zero)
            _vecmat(Hsf, cb, H, WTf, U(0), H3, H3, P, U(0), zero)
            valid = mask[t, b] != 0
            u0 = U(0)
            while u0 < H:
                L = min(_CAP, H - u0)
                _gru_fwd_row(xpf, gb, P, U(0), bh, Hsf, cb, cb + B * H, Gf, HPnf, OUT, H, u0, L,
                             valid, one)
                u0 += L


@njit(**_JIT)
def gru_bwd_small(Hs, G, HPn, W, mask, dY, dh, dxp, DHP, one):
    T = U(dY.shape[0])
    B = U(dY.shape[1])
    H = U(dY.shape[2])
    H3 = U(3) * H
    zero = one - one
    Hsf = Hs.reshape(-1)
    Gf = G.reshape(-1)
    HPnf = HPn.reshape(-1)
    Wf = W.reshape(-1)
    dYf = dY.reshape(-1)
    dhf = dh.reshape(-1)
    dxpf = dxp.reshape(-1)
    DHPf = DHP.reshape(-1)
    dhz = np.empty(B * H, dtype=dY.dtype)
    MM = np.empty(H, dtype=dY.dtype)
    OUT = np.empty(NSEG * CAP, dtype=dY.dtype)
    for tt in range(T):
        t = T - U(1) - tt
        for b in range(B):
            gb = (t * B + b) * H3
            cb = (t * B + b) * H
            hb = b * H
            if mask[t, b] == 0:
                _fill(dxpf, gb, H3, zero)
                _fill(DHPf, gb, H3, zero)
                continue
            u0 = U(0)
            while u0 < H:
                L = min(_CAP, H - u0)
                _gru_bwd_row(Hsf, cb, Gf, gb, HPnf, dYf, dhf, hb, dhz, dxpf, DHPf, OUT, H, u0, L,
                             one)
                u0 += L
            _fill(MM, U(0), H, zero)
            _vecmat(DHPf, gb, H3, Wf, U(0), H, H, MM, U(0), zero)           # dhp W_hh
            for u in range(H):
                dhf[hb + u] = dhz[hb + u] + MM[u]


@njit(**_JIT)
def gru_fwd_step(t, xp, HP, bh, mask, Hs, G, HPn, OUT, one):
    """Large path: HP (B, 3H) = h_prev W_hh^T from BLAS."""
    t = U(t)
    B = U(xp.shape[1])
    H3 = U(xp.shape[2])
    H = H3 // U(3)
    xpf = xp.reshape(-1)
    HPf = HP.reshape(-1)
    Hsf = Hs.reshape(-1)
    Gf = G.reshape(-1)
    HPnf = HPn.reshape(-1)
    for b in range(B):
        gb = (t * B + b) * H3
        cb = (t * B + b) * H
        valid = mask[t, b] != 0
        u0 = U(0)
        while u0 < H:
            L = min(_CAP, H - u0)
            _gru_fwd_row(xpf, gb, HPf, b * H3, bh, Hsf, cb, cb + B * H, Gf, HPnf, OUT, H, u0, L,
                         valid, one)
            u0 += L


@njit(**_JIT)
def gru_bwd_step(t, Hs, G, HPn, mask, dY, dh, dhz, mm, dxp, DHP, OUT, one):
    """Large path: rows valid at t+1 take dh = dhz + mm (mm = dhp_{t+1} W_hh), then step t."""
    t = U(t)
    T = U(dY.shape[0])
    B = U(dY.shape[1])
    H = U(dY.shape[2])
    H3 = U(3) * H
    zero = one - one
    Hsf = Hs.reshape(-1)
    Gf = G.reshape(-1)
    HPnf = HPn.reshape(-1)
    dYf = dY.reshape(-1)
    dhf = dh.reshape(-1)
    dhzf = dhz.reshape(-1)
    mmf = mm.reshape(-1)
    dxpf = dxp.reshape(-1)
    DHPf = DHP.reshape(-1)
    for b in range(B):
        hb = b * H
        if t + U(1) < T:
            if mask[t + U(1), b] != 0:
                for u in range(H):
                    dhf[hb + u] = dhzf[hb + u] + mmf[hb + u]
        gb = (t * B + b) * H3
        cb = (t * B + b) * H
        if mask[t, b] == 0:
            _fill(dxpf, gb, H3, zero)
            _fill(DHPf, gb, H3, zero)
            continue
        u0 = U(0)
        while u0 < H:
            L = min(_CAP, H - u0)
            _gru_bwd_row(Hsf, cb, Gf, gb, HPnf, dYf, dhf, hb, dhzf, dxpf, DHPf, OUT, H, u0, L, one)
            u0 += L


# ----------------------------------------------------------------------------------------------
# Elman RNN (tanh)
# ----------------------------------------------------------------------------------------------

@njit(**_JIT)
def rnn_fwd_small(xp, WT, mask, Hs, one):
    T = U(xp.shape[0])
    B = U(xp.shape[1])
    H = U(xp.shape[2])
    zero = one - one
    xpf = xp.reshape(-1)
    WTf = WT.reshape(-1)
    Hsf = Hs.reshape(-1)
    P = np.empty(H, dtype=xp.dtype)
    for t in range(T):
        for b in range(B):
            cb = (t * B + b) * H
            cb1 = cb + B * H
            if mask[t, b] == 0:
                _copy(Hsf, cb1, Hsf, cb, H)
                continue
            _fill(P, U(0), H, zero)
            _vecmat(Hsf, cb, H, WTf, U(0), H, H, P, U(0), zero)
            for u in range(H):
                Hsf[cb1 + u] = _tanh(xpf[cb + u] + P[u])


@njit(**_JIT)
def rnn_bwd_small(Hs, W, mask, dY, dh, dxp, one):
    T = U(dY.shape[0])
    B = U(dY.shape[1])
    H = U(dY.shape[2])
    zero = one - one
    Hsf = Hs.reshape(-1)
    Wf = W.reshape(-1)
    dYf = dY.reshape(-1)
    dhf = dh.reshape(-1)
    dxpf = dxp.reshape(-1)
    for tt in range(T):
        t = T - U(1) - tt
        for b in range(B):
            cb = (t * B + b) * H
            cb1 = cb + B * H
            hb = b * H
            if mask[t, b] == 0:
                _fill(dxpf, cb, H, zero)
                continue
            for u in range(H):
                h = Hsf[cb1 + u]
                dxpf[cb + u] = (dhf[hb + u] + dYf[cb + u]) * (one - h * h)
            _fill(dhf, hb, H, zero)
            _vecmat(dxpf, cb, H, Wf, U(0), H, H, dhf, hb, zero)


@njit(**_JIT)
def rnn_fwd_step(t, xp, mask, Hs, one):
    """Large path: Hs[t+1] holds h_prev W_hh^T on entry (from BLAS)."""
    t = U(t)
    B = U(xp.shape[1])
    H = U(xp.shape[2])
    xpf = xp.reshape(-1)
    Hsf = Hs.reshape(-1)
    for b in range(B):
        cb = (t * B + b) * H
        cb1 = cb + B * H
        if mask[t, b] == 0:
            _copy(Hsf, cb1, Hsf, cb, H)
            continue
        for u in range(H):
            Hsf[cb1 + u] = _tanh(xpf[cb + u] + Hsf[cb1 + u])


@njit(**_JIT)
def rnn_bwd_step(t, Hs, mask, dY, dh, mm, dxp, one):
    t = U(t)
    T = U(dY.shape[0])
    B = U(dY.shape[1])
    H = U(dY.shape[2])
    zero = one - one
    Hsf = Hs.reshape(-1)
    dYf = dY.reshape(-1)
    dhf = dh.reshape(-1)
    mmf = mm.reshape(-1)
    dxpf = dxp.reshape(-1)
    for b in range(B):
        hb = b * H
        if t + U(1) < T:
            if mask[t + U(1), b] != 0:
                _copy(dhf, hb, mmf, hb, H)
        cb = (t * B + b) * H
        cb1 = cb + B * H
        if mask[t, b] == 0:
            _fill(dxpf, cb, H, zero)
            continue
        for u in range(H):
            d = dhf[hb + u] + dYf[cb + u]
            dhf[hb + u] = d
            h = Hsf[cb1 + u]
            dxpf[cb + u] = d * (one - h * h)


@njit(**_JIT)
def merge_rows(dst, src, mask, t):
    """dst[b] = src[b] for the rows valid at step t (the last merge after a large-path loop)."""
    B = dst.shape[0]
    H = dst.shape[1]
    for b in range(B):
        if mask[t, b] != 0:
            for u in range(H):
                dst[b, u] = src[b, u]


# ----------------------------------------------------------------------------------------------
# Input projection (narrow inputs)
# ----------------------------------------------------------------------------------------------
# With a few input features (the Gers 2002 tasks have one) a BLAS call for ``x W_ih^T`` is mostly
# call and thread overhead, and NumPy's column sum for ``db`` is slow on a tall array; these loops
# run once over the rows, vectorised over the G*H gate columns.

PROJ_BLOCK = 64               # rows whose products are summed in registers before reaching dW, db


PROJ_COLUMNS_MAX_D = 4        # up to this many inputs, proj_forward vectorises along a whole row


@njit(**_JIT)
def proj_forward(x2, WT, bias, out, zero):
    """out (N, G) = x2 (N, D) @ WT (D, G) + bias (G): per row the sum over d first, then the
    bias (as the reference's BLAS product followed by ``+= bias``). ``zero`` is 0 in the dtype.

    With D <= PROJ_COLUMNS_MAX_D a row is a few passes of one vectorised loop over its G columns
    (W1, D = 1: 52 -> 28 us in float32); wider rows take 8-column register tiles. The two orders
    of work give the same bits (each sum runs over d in order from zero)."""
    N = U(x2.shape[0])
    D = U(x2.shape[1])
    G = U(WT.shape[1])
    xf = x2.reshape(-1)
    Wf = WT.reshape(-1)
    of = out.reshape(-1)
    if D > U(PROJ_COLUMNS_MAX_D):
        for n in range(N):
            _vecmat_add(xf, n * D, D, Wf, U(0), G, G, bias, U(0), of, n * G, zero)
        return
    acc = np.empty(G, dtype=out.dtype)
    for n in range(N):
        x0 = xf[n * D]
        for g in range(G):
            acc[g] = zero + x0 * Wf[g]
        for d in range(U(1), D):
            xd = xf[n * D + d]
            for g in range(G):
                acc[g] += xd * Wf[d * G + g]
        o = n * G
        for g in range(G):
            of[o + g] = bias[g] + acc[g]


@njit(**_JIT)
def proj_backward(dxp2, x2, WT, ones, dx, dWT, db, zero):
    """dx (N, D) = dxp2 (N, G) @ WT^T (WT = W_ih^T, (D, G)); dWT (D, G) = x2^T dxp2 and db (G) =
    the column sums of dxp2 (``ones`` holds PROJ_BLOCK ones; dx, dWT, db may hold anything on
    entry; ``zero`` is 0 in the dtype; a dx with no rows is not computed). The sums over rows run
    in registers over blocks of PROJ_BLOCK rows, each block's sum then added to the result
    (blocked summation, rounding error near NumPy's pairwise sums)."""
    N = U(dxp2.shape[0])
    D = U(x2.shape[1])
    G = U(dxp2.shape[1])
    df = dxp2.reshape(-1)
    xf = x2.reshape(-1)
    Wf = WT.reshape(-1)
    dxf = dx.reshape(-1)
    dWf = dWT.reshape(-1)
    _fill(dWf, U(0), D * G, zero)
    _fill(db, U(0), G, zero)
    n0 = U(0)
    while n0 < N:
        nr = min(N - n0, U(PROJ_BLOCK))
        _vecmat_s(ones, U(0), U(1), nr, df, n0 * G, G, G, db, U(0), zero)
        for d in range(D):
            _vecmat_s(xf, n0 * D + d, D, nr, df, n0 * G, G, G, dWf, d * G, zero)
        n0 += nr
    for n in range(U(dx.shape[0])):                      # dx[n, d] = dxp2[n] . WT[d], 8 lanes
        rb = n * G
        for d in range(D):
            wb = d * G
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            a4 = zero
            a5 = zero
            a6 = zero
            a7 = zero
            g = U(0)
            while g + U(8) <= G:
                a0 += df[rb + g] * Wf[wb + g]
                a1 += df[rb + g + U(1)] * Wf[wb + g + U(1)]
                a2 += df[rb + g + U(2)] * Wf[wb + g + U(2)]
                a3 += df[rb + g + U(3)] * Wf[wb + g + U(3)]
                a4 += df[rb + g + U(4)] * Wf[wb + g + U(4)]
                a5 += df[rb + g + U(5)] * Wf[wb + g + U(5)]
                a6 += df[rb + g + U(6)] * Wf[wb + g + U(6)]
                a7 += df[rb + g + U(7)] * Wf[wb + g + U(7)]
                g += U(8)
            while g < G:
                a0 += df[rb + g] * Wf[wb + g]
                g += U(1)
            dxf[n * D + d] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@njit(**_JIT)
def ids_proj_backward(ids, dxp2, ones, dWT, db, zero):
    """Gradients of the projection of token ids (one-hot inputs): dWT (V, G) row v = the sum, in
    row order, of the rows n of dxp2 (N, G) with ids[n] = v (a scatter-add: the one-hot product
    ``x2^T dxp2`` without its zero terms); db (G) = the column sums of dxp2, blocked as in
    :func:`proj_backward`. ids (N,) int64 in [0, V); dWT, db may hold anything on entry."""
    N = U(dxp2.shape[0])
    G = U(dxp2.shape[1])
    df = dxp2.reshape(-1)
    dWf = dWT.reshape(-1)
    _fill(dWf, U(0), U(dWT.shape[0]) * G, zero)
    _fill(db, U(0), G, zero)
    for n in range(N):
        o = U(ids[n]) * G
        r = n * G
        for g in range(G):
            dWf[o + g] += df[r + g]
    n0 = U(0)
    while n0 < N:
        nr = min(N - n0, U(PROJ_BLOCK))
        _vecmat_s(ones, U(0), U(1), nr, df, n0 * G, G, G, db, U(0), zero)
        n0 += nr


# ----------------------------------------------------------------------------------------------
# Adam
# ----------------------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy", nogil=True)     # no "contract": NumPy's roundings exactly
def adam_update(p, g, m, v, s):
    """One Adam update in place, one pass instead of NumPy's dozen, with the operations and
    roundings of :meth:`lstmlab.core.optim.Adam.step`. p, g, m, v: C-contiguous, one shape; s holds
    the scalars in their dtype, ``[b1, 1 - b1, b2, 1 - b2, lr / (1 - b1^t), 1 - b2^t, eps]``::

        m = m b1 + (1 - b1) g        v = v b2 + ((1 - b2) g) g
        p = p - (step m) / (sqrt(v / c2) + eps)          (step = s[4], c2 = s[5])
    """
    pf = p.reshape(-1)
    gf = g.reshape(-1)
    mf = m.reshape(-1)
    vf = v.reshape(-1)
    b1, one_b1, b2, one_b2, step, c2, eps = s[0], s[1], s[2], s[3], s[4], s[5], s[6]
    for k in range(pf.shape[0]):
        mk = mf[k] * b1 + one_b1 * gf[k]
        vk = vf[k] * b2 + (one_b2 * gf[k]) * gf[k]
        mf[k] = mk
        vf[k] = vk
        pf[k] = pf[k] - (step * mk) / (np.sqrt(vk / c2) + eps)
