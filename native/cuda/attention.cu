// out = softmax(q k^T * scale [+ causal mask]) v, flash-style: key/value
// tiles of 32 rows staged in shared memory, an online softmax per query, the
// score matrix never written. q: [B,Sq,Hq,D], k/v: [B,Skv,Hkv,D] (grouped
// query: q head h reads kv head h / (Hq/Hkv)), any strides on the first
// three dims. Causal: query i sees keys j <= i + (Skv - Sq).
//
// A block is 4 warps x 4 queries of one head. Within a tile, lane j scores
// key j against each query (no shuffles per key), then every lane updates
// the output dims it owns (d = lane + 32 i) with the tile's probabilities.
// When there are too few query blocks to fill the GPU (decoding: one query
// per head), the keys are split across blocks and the partial softmaxes
// combined by a second kernel (flash-decoding).
#include <algorithm>

#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

constexpr int kWarps = 4, kQueriesPerWarp = 4, kQueriesPerBlock = kWarps * kQueriesPerWarp, kTile = 32;

struct AttnArgs {
  const float *q, *k, *v;
  float* out;
  int64_t qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2, os0, os1, os2;
  int64_t Sq, Skv, Hq, group, D;
  float scale;
  int causal;
  int splits;
  int64_t split_len;
  float* part_ml;   // [B,Hq,Sq,splits,2] running max and sum, when splits > 1
  float* part_acc;  // [B,Hq,Sq,splits,D]
};

template <int SLOTS>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(AttnArgs a) {
  extern __shared__ float smem[];
  const int64_t D = a.D, ld = D + 1;  // +1: lanes reading different keys hit different banks
  float* Ks = smem;
  float* Vs = Ks + kTile * ld;
  float* Qs = Vs + kTile * ld;  // [16][D]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t qblock = blockIdx.x / a.splits, split = blockIdx.x % a.splits;
  const int64_t h = blockIdx.y, b = blockIdx.z, hk = h / a.group;
  const int64_t q0 = qblock * kQueriesPerBlock;

  for (int64_t i = threadIdx.x; i < kQueriesPerBlock * D; i += blockDim.x) {
    const int64_t qi = i / D, d = i % D;
    Qs[i] = q0 + qi < a.Sq ? a.q[b * a.qs0 + (q0 + qi) * a.qs1 + h * a.qs2 + d] : 0.0f;
  }
  // The keys this block reads: its split, cut at the last key its last query may see.
  const int64_t kv_begin = split * a.split_len;
  int64_t kv_end = min(a.Skv, kv_begin + a.split_len);
  if (a.causal) kv_end = min(kv_end, min(q0 + kQueriesPerBlock, a.Sq) - 1 + (a.Skv - a.Sq) + 1);

  float m[kQueriesPerWarp], l[kQueriesPerWarp], acc[kQueriesPerWarp][SLOTS];
#pragma unroll
  for (int i = 0; i < kQueriesPerWarp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int s = 0; s < SLOTS; ++s) acc[i][s] = 0.0f;
  }

  for (int64_t t0 = kv_begin; t0 < kv_end; t0 += kTile) {
    __syncthreads();  // the previous tile is no longer read (and Qs is written)
    for (int64_t i = threadIdx.x; i < kTile * D; i += blockDim.x) {
      const int64_t j = i / D, d = i % D, kv = t0 + j;
      const bool in = kv < kv_end;
      Ks[j * ld + d] = in ? a.k[b * a.ks0 + kv * a.ks1 + hk * a.ks2 + d] : 0.0f;
      Vs[j * ld + d] = in ? a.v[b * a.vs0 + kv * a.vs1 + hk * a.vs2 + d] : 0.0f;
    }
    __syncthreads();
    const int64_t kv = t0 + lane;
#pragma unroll
    for (int i = 0; i < kQueriesPerWarp; ++i) {
      const int64_t qi = warp * kQueriesPerWarp + i, qpos = q0 + qi;
      if (qpos >= a.Sq) break;  // warp-uniform
      const float* qrow = Qs + qi * D;
      const float* krow = Ks + lane * ld;
      float s = 0.0f;
      for (int64_t d = 0; d < D; ++d) s = fmaf(qrow[d], krow[d], s);
      bool visible = kv < kv_end;
      if (a.causal) visible = visible && kv <= qpos + (a.Skv - a.Sq);
      s = visible ? s * a.scale : -INFINITY;
      const float m_new = fmaxf(m[i], warp_max(s));
      if (m_new == -INFINITY) continue;  // nothing visible yet for this query
      const float p = visible ? __expf(s - m_new) : 0.0f;
      const float corr = __expf(m[i] - m_new);  // 0 when m was -inf
      l[i] = l[i] * corr + warp_sum(p);
      m[i] = m_new;
#pragma unroll
      for (int sl = 0; sl < SLOTS; ++sl) acc[i][sl] *= corr;
      for (int j = 0; j < kTile; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int sl = 0; sl < SLOTS; ++sl) {
          const int64_t d = lane + 32 * sl;
          if (d < D) acc[i][sl] = fmaf(pj, Vs[j * ld + d], acc[i][sl]);
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < kQueriesPerWarp; ++i) {
    const int64_t qpos = q0 + warp * kQueriesPerWarp + i;
    if (qpos >= a.Sq) break;
    if (a.splits == 1) {
      const float inv = 1.0f / l[i];
#pragma unroll
      for (int sl = 0; sl < SLOTS; ++sl) {
        const int64_t d = lane + 32 * sl;
        if (d < D) a.out[b * a.os0 + qpos * a.os1 + h * a.os2 + d] = acc[i][sl] * inv;
      }
    } else {
      const int64_t row = ((b * a.Hq + h) * a.Sq + qpos) * a.splits + split;
      if (lane == 0) {
        a.part_ml[row * 2] = m[i];
        a.part_ml[row * 2 + 1] = l[i];
      }
#pragma unroll
      for (int sl = 0; sl < SLOTS; ++sl) {
        const int64_t d = lane + 32 * sl;
        if (d < D) a.part_acc[row * D + d] = acc[i][sl];
      }
    }
  }
}

// One warp per (b, h, query): the splits' softmaxes rescaled to a common max.
__global__ void combine_kernel(AttnArgs a, int64_t rows) {
  const int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;
  const int lane = threadIdx.x & 31;
  const int64_t qpos = r % a.Sq, h = (r / a.Sq) % a.Hq, b = r / (a.Sq * a.Hq);
  float M = -INFINITY;
  for (int s = 0; s < a.splits; ++s) M = fmaxf(M, a.part_ml[(r * a.splits + s) * 2]);
  float L = 0.0f;
  for (int s = 0; s < a.splits; ++s) {
    const float ms = a.part_ml[(r * a.splits + s) * 2];
    if (ms != -INFINITY) L += a.part_ml[(r * a.splits + s) * 2 + 1] * __expf(ms - M);
  }
  for (int64_t d = lane; d < a.D; d += 32) {
    float o = 0.0f;
    for (int s = 0; s < a.splits; ++s) {
      const float ms = a.part_ml[(r * a.splits + s) * 2];
      if (ms != -INFINITY) o += a.part_acc[(r * a.splits + s) * a.D + d] * __expf(ms - M);
    }
    a.out[b * a.os0 + qpos * a.os1 + h * a.os2 + d] = o / L;
  }
}

template <int SLOTS>
void launch(const AttnArgs& a, dim3 grid, size_t smem) {
  if (smem > 48 * 1024)
    check(cudaFuncSetAttribute(attention_kernel<SLOTS>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
          "attention shared memory");
  attention_kernel<SLOTS><<<grid, kWarps * 32, smem, stream()>>>(a);
}

}  // namespace

void attention(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& out, float scale,
               bool causal) {
  const int64_t B = q.shape[0], Sq = q.shape[1], Hq = q.shape[2], D = q.shape[3];
  const int64_t Skv = k.shape[1], Hkv = k.shape[2];
  if (!B || !Sq || !Hq || !D) return;
  if (D > 128) fail(TE_ERR_UNSUPPORTED, "attention on CUDA takes head sizes up to 128 (got %lld)", (long long)D);
  if (B > 65535 || Hq > 65535) fail(TE_ERR_UNSUPPORTED, "attention on CUDA: batch and heads must be <= 65535");
  // Filled by name (C++17 has no designated initialisers); what is not named here is zero.
  AttnArgs a{};
  a.q = static_cast<const float*>(q.data);
  a.k = static_cast<const float*>(k.data);
  a.v = static_cast<const float*>(v.data);
  a.out = static_cast<float*>(out.data);
  a.qs0 = q.strides[0];
  a.qs1 = q.strides[1];
  a.qs2 = q.strides[2];
  a.ks0 = k.strides[0];
  a.ks1 = k.strides[1];
  a.ks2 = k.strides[2];
  a.vs0 = v.strides[0];
  a.vs1 = v.strides[1];
  a.vs2 = v.strides[2];
  a.os0 = out.strides[0];
  a.os1 = out.strides[1];
  a.os2 = out.strides[2];
  a.Sq = Sq;
  a.Skv = Skv;
  a.Hq = Hq;
  a.group = Hq / Hkv;
  a.D = D;
  a.scale = scale;
  a.causal = causal ? 1 : 0;
  a.splits = 1;
  a.split_len = Skv > 0 ? Skv : 1;
  const int64_t qblocks = (Sq + kQueriesPerBlock - 1) / kQueriesPerBlock;
  const int64_t work = qblocks * Hq * B;
  // Split the keys when the query blocks alone leave most of the GPU idle.
  const int64_t want = 2LL * sm_count();
  int64_t splits = 1;
  if (work < want && Skv > 2 * kTile)
    splits = std::min<int64_t>((want + work - 1) / work, (Skv + 2 * kTile - 1) / (2 * kTile));
  splits = std::min<int64_t>(splits, 64);
  if (qblocks * splits > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "attention on CUDA: too many queries");
  a.splits = static_cast<int>(splits);
  a.split_len = (Skv + splits - 1) / splits;
  const size_t rows = static_cast<size_t>(B * Hq * Sq);
  Scratch ml(splits > 1 ? rows * splits * 2 * sizeof(float) : 0);
  Scratch part(splits > 1 ? rows * splits * D * sizeof(float) : 0);
  a.part_ml = ml.as<float>();
  a.part_acc = part.as<float>();
  const dim3 grid(static_cast<unsigned>(qblocks * splits), static_cast<unsigned>(Hq), static_cast<unsigned>(B));
  const size_t smem = sizeof(float) * static_cast<size_t>(2 * kTile * (D + 1) + kQueriesPerBlock * D);
  if (D <= 32)
    launch<1>(a, grid, smem);
  else if (D <= 64)
    launch<2>(a, grid, smem);
  else if (D <= 96)
    launch<3>(a, grid, smem);
  else
    launch<4>(a, grid, smem);
  check_launch("attention");
  if (splits > 1) {
    combine_kernel<<<blocks_for(static_cast<int64_t>(rows) * 32, 256), 256, 0, stream()>>>(a,
                                                                                           static_cast<int64_t>(rows));
    check_launch("attention (combine)");
  }
}

}  // namespace te::cuda
