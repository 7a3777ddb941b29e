/* Winograd F(m, r) for the decoder's square, stride-1, dilated residual convolutions (AVX2 + FMA).

   y[t] = res[t] + bias + sum_k W_k act(x[t + (k - h) d]),  h = (r - 1) / 2, zero outside [0, T)

   x, res and y are rows [T][C] (a channels-last [1, C, 1, T] image); act is a leaky ReLU of
   slope `slope` (1 = none), applied while reading, so the caller makes no activated copy.
   A tile is m outputs of one dilation phase: t = s m d + phase + o d, o < m, reading the
   n = m + r - 1 inputs s m d + phase + (i - h) d. Per tile: V = BT act(x) (per channel),
   M_p = V_p U_p (one C x C product per transform point p), y = AT M + bias + res.
   The products go through a 6 x 16 register kernel; tiles are processed in blocks whose
   transformed inputs stay in the L2 cache. The transform matrices come from the caller
   (vits/model/winograd.py builds them); zeros in them are skipped.

   Built by winograd.py with the system C compiler into a per-user cache; without one the
   decoder keeps its oneDNN convolutions. */

#include <immintrin.h>
#include <stdlib.h>

/* m + r - 1, the transform points: 8 (F(6, 3), F(4, 5), F(2, 7)) or 10 (F(4, 7)). Each count
   gets its own copy of the loops below (`points` is a constant there), so that every input of a
   tile stays in a register. */
#define MAX_POINTS 10
#define INLINE static inline __attribute__((always_inline))
#define MR 6
#define NR 16

/* V[p][row][c] for the tiles first .. first + tiles - 1 (rows 0 ..), zero-padded reads. Dense
   over the points x points transform: every input stays in a register, which a zero-skipping
   loop over run-time indices would not allow. */
INLINE void transform_inputs(const float *x, long T, int C, int dil, int m, int h, long first, int tiles,
                             int block, const float *BT, float slope, float *V, const int points) {
    const __m256 slope_v = _mm256_set1_ps(slope);
    const int activate = slope != 1.0f;
    for (int row = 0; row < tiles; row++) {
        long tile = first + row;
        long s = tile / dil, phase = tile % dil;
        long base = s * m * dil + phase - (long)h * dil;
        const float *src[MAX_POINTS];
        for (int i = 0; i < points; i++) {
            long t = base + (long)i * dil;
            src[i] = (t >= 0 && t < T) ? x + t * C : NULL;
        }
        for (int c = 0; c < C; c += 8) {
            __m256 in[MAX_POINTS];
#pragma GCC unroll 10
            for (int i = 0; i < points; i++) {
                __m256 v = src[i] == NULL ? _mm256_setzero_ps() : _mm256_loadu_ps(src[i] + c);
                in[i] = activate ? _mm256_max_ps(v, _mm256_mul_ps(v, slope_v)) : v;
            }
#pragma GCC unroll 10
            for (int p = 0; p < points; p++) {
                __m256 acc = _mm256_mul_ps(_mm256_broadcast_ss(BT + p * points), in[0]);
#pragma GCC unroll 10
                for (int i = 1; i < points; i++)
                    acc = _mm256_fmadd_ps(_mm256_broadcast_ss(BT + p * points + i), in[i], acc);
                _mm256_storeu_ps(V + ((size_t)p * block + row) * C + c, acc);
            }
        }
    }
}

/* out[r][0..15] = sum_k A[r][k] B[k][0..15] for r < MR (A rows lda apart, B rows ldb apart). */
static inline void kernel_6x16(const float *A, long lda, const float *B, long ldb, int K, float *out) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(B + k * ldb);
        __m256 b1 = _mm256_loadu_ps(B + k * ldb + 8);
        __m256 a;
        a = _mm256_broadcast_ss(A + k);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(A + lda + k);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(A + 2 * lda + k);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(A + 3 * lda + k);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(A + 4 * lda + k);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(A + 5 * lda + k);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    _mm256_storeu_ps(out + 0 * NR, c00);
    _mm256_storeu_ps(out + 0 * NR + 8, c01);
    _mm256_storeu_ps(out + 1 * NR, c10);
    _mm256_storeu_ps(out + 1 * NR + 8, c11);
    _mm256_storeu_ps(out + 2 * NR, c20);
    _mm256_storeu_ps(out + 2 * NR + 8, c21);
    _mm256_storeu_ps(out + 3 * NR, c30);
    _mm256_storeu_ps(out + 3 * NR + 8, c31);
    _mm256_storeu_ps(out + 4 * NR, c40);
    _mm256_storeu_ps(out + 4 * NR + 8, c41);
    _mm256_storeu_ps(out + 5 * NR, c50);
    _mm256_storeu_ps(out + 5 * NR + 8, c51);
}

/* Tiles per block: the block's transformed inputs (points x tiles x C floats) take about
   128 KB, so they stay in the L2 cache while every output-channel panel reads them. */
static int block_tiles(int C) {
    int tiles = 4096 / C / MR * MR;
    return tiles < MR ? MR : tiles;
}

INLINE int winograd_conv(const float *x, const float *res, float *y, long T, int Cin, int Cout, int dil, int m,
                         int r, const float *U, const float *bias, const float *BT, const float *AT, float slope,
                         const int points) {
    const int h = (r - 1) / 2;
    const int block = block_tiles(Cin);
    float *V = aligned_alloc(64, sizeof(float) * points * (size_t)block * Cin);
    float products[MAX_POINTS * MR * NR];
    if (V == NULL)
        return -2;
    /* Tiles: every phase of every super-tile of m d outputs; the last ones may run past T. */
    const long supers = (T + (long)m * dil - 1) / ((long)m * dil);
    const long tiles = supers * dil;
    for (long first = 0; first < tiles; first += block) {
        int count = (int)(tiles - first < block ? tiles - first : block);
        int padded = (count + MR - 1) / MR * MR;
        /* Rows past `count` are transformed and multiplied too (finite values, never written out). */
        transform_inputs(x, T, Cin, dil, m, h, first, padded, block, BT, slope, V, points);
        for (int co = 0; co < Cout; co += NR) {
            const float *panel = U + (size_t)(co / NR) * points * Cin * NR;
            for (int row0 = 0; row0 < padded; row0 += MR) {
                for (int p = 0; p < points; p++)
                    kernel_6x16(V + ((size_t)p * block + row0) * Cin, Cin, panel + (size_t)p * Cin * NR, NR, Cin,
                                products + p * MR * NR);
                for (int row = 0; row < MR && row0 + row < count; row++) {
                    long tile = first + row0 + row;
                    long s = tile / dil, phase = tile % dil;
                    long t0 = s * m * dil + phase;
                    for (int o = 0; o < m; o++) {
                        long t = t0 + (long)o * dil;
                        if (t >= T)
                            break;
                        __m256 acc0 = _mm256_loadu_ps(bias + co), acc1 = _mm256_loadu_ps(bias + co + 8);
                        if (res != NULL) {
                            acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(res + t * Cout + co));
                            acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(res + t * Cout + co + 8));
                        }
#pragma GCC unroll 10
                        for (int p = 0; p < points; p++) {
                            __m256 a = _mm256_broadcast_ss(AT + o * points + p);
                            const float *mp = products + (p * MR + row) * NR;
                            acc0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(mp), acc0);
                            acc1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(mp + 8), acc1);
                        }
                        _mm256_storeu_ps(y + t * Cout + co, acc0);
                        _mm256_storeu_ps(y + t * Cout + co + 8, acc1);
                    }
                }
            }
        }
    }
    free(V);
    return 0;
}

/* Returns 0, or -1 for arguments this kernel does not take (the caller then keeps oneDNN).
   U is packed by output-channel panel: U[Cout / NR][points][Cin][NR], so that a panel's rows
   are contiguous and it stays in the L1/L2 cache across a block's tiles. */
int vits_winograd_conv(const float *x, const float *res, float *y, long T, int Cin, int Cout, int dil, int m,
                       int r, const float *U, const float *bias, const float *BT, const float *AT, float slope) {
    if (T <= 0 || Cin <= 0 || Cin % 8 != 0 || Cout <= 0 || Cout % NR != 0 || dil <= 0 || m <= 0 || r <= 0 ||
        r % 2 == 0)
        return -1;
    if (m + r - 1 == 8)
        return winograd_conv(x, res, y, T, Cin, Cout, dil, m, r, U, bias, BT, AT, slope, 8);
    if (m + r - 1 == 10)
        return winograd_conv(x, res, y, T, Cin, Cout, dil, m, r, U, bias, BT, AT, slope, 10);
    return -1;
}
