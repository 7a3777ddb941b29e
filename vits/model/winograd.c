/* Winograd F(m, r) for the decoder's square, stride-1, dilated residual convolutions.

   y[t] = res[t] + bias + sum_k W_k act(x[t + (k - h) d]),  h = (r - 1) / 2, zero outside [0, T)

   x, res and y are rows [T][C] (a channels-last [1, C, 1, T] image); act is a leaky ReLU of
   slope `slope` (1 = none), applied while reading, so the caller makes no activated copy.
   A tile is m outputs of one dilation phase: t = s m d + phase + o d, o < m, reading the
   n = m + r - 1 inputs s m d + phase + (i - h) d. Per tile: V = BT act(x) (per channel),
   M_p = V_p U_p (one C x C product per transform point p), y = AT M + bias + res.
   The products go through a 6 x (2 vectors) register kernel; tiles are processed in blocks
   whose transformed inputs stay in the L2 cache. The transform matrices come from the caller
   (vits/model/winograd.py builds them); zeros in them are skipped.

   Built by winograd.py with the system C compiler into a per-user cache, once with AVX2 + FMA
   (8 lanes) and, where the CPU's AVX-512 units are 512 bits wide, with AVX-512F (16 lanes).
   Both builds do every output's multiply-adds in the same order, so they compute the same
   bits. Without a compiler the decoder keeps its oneDNN convolutions. */

#include <immintrin.h>
#include <stdlib.h>

#if defined(__AVX512F__)
#define LANES 16
typedef __m512 vec;
#define vzero() _mm512_setzero_ps()
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, v) _mm512_storeu_ps((p), (v))
#define vset1(x) _mm512_set1_ps(x)
#define vmul(a, b) _mm512_mul_ps((a), (b))
#define vadd(a, b) _mm512_add_ps((a), (b))
#define vmax(a, b) _mm512_max_ps((a), (b))
#define vfmadd(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#else
#define LANES 8
typedef __m256 vec;
#define vzero() _mm256_setzero_ps()
#define vload(p) _mm256_loadu_ps(p)
#define vstore(p, v) _mm256_storeu_ps((p), (v))
#define vset1(x) _mm256_set1_ps(x)
#define vmul(a, b) _mm256_mul_ps((a), (b))
#define vadd(a, b) _mm256_add_ps((a), (b))
#define vmax(a, b) _mm256_max_ps((a), (b))
#define vfmadd(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#endif

/* m + r - 1, the transform points: 8 (F(6, 3), F(4, 5), F(2, 7)) or 10 (F(4, 7)). Each count
   gets its own copy of the loops below (`points` is a constant there), so that every input of a
   tile stays in a register. */
#define MAX_POINTS 10
#define INLINE static inline __attribute__((always_inline))
#define MR 6
#define NR (2 * LANES)

/* V[p][row][c] for the tiles first .. first + tiles - 1 (rows 0 ..), zero-padded reads. Dense
   over the points x points transform: every input stays in a register, which a zero-skipping
   loop over run-time indices would not allow. */
INLINE void transform_inputs(const float *x, long T, int C, int dil, int m, int h, long first, int tiles,
                             int block, const float *BT, float slope, float *V, const int points) {
    const vec slope_v = vset1(slope);
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
        for (int c = 0; c < C; c += LANES) {
            vec in[MAX_POINTS];
#pragma GCC unroll 10
            for (int i = 0; i < points; i++) {
                vec v = src[i] == NULL ? vzero() : vload(src[i] + c);
                in[i] = activate ? vmax(v, vmul(v, slope_v)) : v;
            }
#pragma GCC unroll 10
            for (int p = 0; p < points; p++) {
                vec acc = vmul(vset1(BT[p * points]), in[0]);
#pragma GCC unroll 10
                for (int i = 1; i < points; i++)
                    acc = vfmadd(vset1(BT[p * points + i]), in[i], acc);
                vstore(V + ((size_t)p * block + row) * C + c, acc);
            }
        }
    }
}

/* out[r][0 .. NR) = sum_k A[r][k] B[k][0 .. NR) for r < MR (A rows lda apart, B rows ldb
   apart). Unrolled in full, the accumulators live in registers (12 of AVX2's 16, of AVX-512's 32). */
INLINE void kernel_mr_nr(const float *A, long lda, const float *B, long ldb, int K, float *out) {
    vec c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = vzero();
    for (int k = 0; k < K; k++) {
        const vec b0 = vload(B + k * ldb), b1 = vload(B + k * ldb + LANES);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const vec a = vset1(A[i * lda + k]);
            c0[i] = vfmadd(a, b0, c0[i]);
            c1[i] = vfmadd(a, b1, c1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        vstore(out + i * NR, c0[i]);
        vstore(out + i * NR + LANES, c1[i]);
    }
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
                    kernel_mr_nr(V + ((size_t)p * block + row0) * Cin, Cin, panel + (size_t)p * Cin * NR, NR, Cin,
                                products + p * MR * NR);
                for (int row = 0; row < MR && row0 + row < count; row++) {
                    long tile = first + row0 + row;
                    long s = tile / dil, phase = tile % dil;
                    long t0 = s * m * dil + phase;
                    for (int o = 0; o < m; o++) {
                        long t = t0 + (long)o * dil;
                        if (t >= T)
                            break;
                        vec acc0 = vload(bias + co), acc1 = vload(bias + co + LANES);
                        if (res != NULL) {
                            acc0 = vadd(acc0, vload(res + t * Cout + co));
                            acc1 = vadd(acc1, vload(res + t * Cout + co + LANES));
                        }
#pragma GCC unroll 10
                        for (int p = 0; p < points; p++) {
                            const vec a = vset1(AT[o * points + p]);
                            const float *mp = products + (p * MR + row) * NR;
                            acc0 = vfmadd(a, vload(mp), acc0);
                            acc1 = vfmadd(a, vload(mp + LANES), acc1);
                        }
                        vstore(y + t * Cout + co, acc0);
                        vstore(y + t * Cout + co + LANES, acc1);
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
   are contiguous and it stays in the L1/L2 cache across a block's tiles (NR: see
   vits_winograd_lanes). */
int vits_winograd_conv(const float *x, const float *res, float *y, long T, int Cin, int Cout, int dil, int m,
                       int r, const float *U, const float *bias, const float *BT, const float *AT, float slope) {
    if (T <= 0 || Cin <= 0 || Cin % LANES != 0 || Cout <= 0 || Cout % NR != 0 || dil <= 0 || m <= 0 || r <= 0 ||
        r % 2 == 0)
        return -1;
    if (m + r - 1 == 8)
        return winograd_conv(x, res, y, T, Cin, Cout, dil, m, r, U, bias, BT, AT, slope, 8);
    if (m + r - 1 == 10)
        return winograd_conv(x, res, y, T, Cin, Cout, dil, m, r, U, bias, BT, AT, slope, 10);
    return -1;
}

/* The floats per vector of this build: input channels come in multiples of it, output channels
   (and the weights' panels) in multiples of twice it. */
int vits_winograd_lanes(void) { return LANES; }
