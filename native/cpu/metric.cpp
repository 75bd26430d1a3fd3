#include "metric.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/buffer.h"
#include "../core/threadpool.h"
#include "gemm.h"
#include "isa.h"
#include "rows.h"

namespace te::cpu {

namespace {

// PyTorch's F.normalize: x / max(||x||, eps).
constexpr float kNormEps = 1e-12f;

// 1 / max(||t_c||, eps) for every table row, f32/f16/bf16.
void inverse_norms(const Isa& is, const Rows& t, float* out) {
  for_rows(t.rows, t.cols, [&](int64_t r0, int64_t r1) {
    Buffer<float> row(t.dtype == TE_F32 ? 0 : t.cols);
    for (int64_t r = r0; r < r1; ++r) {
      const float* v = t.row<float>(r);
      if (t.dtype == TE_F16) {
        is.f16_to_f32(t.row<uint16_t>(r), row.data(), t.cols);
        v = row.data();
      } else if (t.dtype == TE_BF16) {
        is.bf16_to_f32(t.row<uint16_t>(r), row.data(), t.cols);
        v = row.data();
      }
      out[r] = 1.0f / std::max(std::sqrt(is.sum_sq(v, t.cols)), kNormEps);
    }
  });
}

Rows dense_rows(float* p, int64_t rows, int64_t cols) {
  return Rows{reinterpret_cast<char*>(p), rows, cols, cols, TE_F32};
}

struct Candidate {
  float score;
  int32_t index;
};

// The total order of results: higher score first, then lower index; NaN last.
inline bool better(const Candidate& a, const Candidate& b) {
  const bool an = a.score != a.score, bn = b.score != b.score;
  if (an != bn) return bn;
  if (!an && a.score != b.score) return a.score > b.score;
  return a.index < b.index;
}

// The k best candidates seen so far for one query, as a heap whose top is
// the worst of them (the one to beat).
class TopK {
 public:
  void reset(Candidate* slots, int32_t k) {
    h_ = slots;
    k_ = k;
    n_ = 0;
  }
  bool full() const { return n_ == k_; }
  const Candidate& worst() const { return h_[0]; }
  void offer(const Candidate& c) {
    if (n_ < k_) {
      h_[n_++] = c;
      std::push_heap(h_, h_ + n_, better);
    } else if (better(c, h_[0])) {
      std::pop_heap(h_, h_ + n_, better);
      h_[n_ - 1] = c;
      std::push_heap(h_, h_ + n_, better);
    }
  }
  int32_t size() const { return n_; }
  Candidate* begin() { return h_; }

 private:
  Candidate* h_ = nullptr;
  int32_t k_ = 0, n_ = 0;
};

}  // namespace

void l2_normalize(const Rows& x, float eps, const Rows& y) {
  const Isa& is = isa();
  for_rows(x.rows, x.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      const float norm = std::sqrt(is.sum_sq(in, x.cols));
      is.scale(1.0f / std::max(norm, eps), in, y.row<float>(r), x.cols);
    }
  });
}

void cosine(const Rows& q, const Rows& table, float* out, int64_t ldo) {
  const Isa& is = isa();
  Buffer<float> qn(q.rows * q.cols), inv(table.rows);
  l2_normalize(q, kNormEps, dense_rows(qn.data(), q.rows, q.cols));
  inverse_norms(is, table, inv.data());
  GemmEpilogue ep;
  ep.col_scale = inv.data();
  gemm(q.rows, table.rows, q.cols, {qn.data(), q.cols, false}, {table.data, table.dtype, table.stride, false}, out, ldo,
       ep);
}

namespace {

// Tables up to this many f32 rows take the per-query path.
constexpr int64_t kSmallTable = 64;

// A label table of a few rows (Emotion6's six): each query is read once,
// its norm and its dot with every table row taken in that one pass, so no
// normalised copy of the queries and no packing for a product whose other
// side is a handful of rows. Queries are independent: the answer does not
// depend on the batch or the thread count.
void cosine_topk_small_table(const Isa& is, const Rows& q, const Rows& table, const float* inv, int32_t k,
                             float* scores, int32_t* indices) {
  const int64_t C = table.rows, H = q.cols;
  for_rows(q.rows, H * (C + 1), [&](int64_t r0, int64_t r1) {
    Candidate slots[kSmallTable];
    TopK heap;
    for (int64_t b = r0; b < r1; ++b) {
      const float* x = q.row<float>(b);
      const float inv_q = 1.0f / std::max(std::sqrt(is.sum_sq(x, H)), kNormEps);
      heap.reset(slots, k);
      for (int64_t c = 0; c < C; ++c) {
        const float s = is.dot(x, table.row<float>(c), H) * inv_q;
        heap.offer({inv ? s * inv[c] : s, static_cast<int32_t>(c)});
      }
      std::sort(heap.begin(), heap.begin() + heap.size(), better);
      for (int32_t i = 0; i < k; ++i) {
        scores[b * k + i] = heap.begin()[i].score;
        indices[b * k + i] = heap.begin()[i].index;
      }
    }
  });
}

}  // namespace

void cosine_topk(const Rows& q, const Rows& table, bool table_normalized, int32_t k, float* scores, int32_t* indices) {
  const Isa& is = isa();
  const int64_t B = q.rows, C = table.rows, H = q.cols;
  if (C <= kSmallTable && table.dtype == TE_F32) {
    Buffer<float> inv(table_normalized ? 0 : C);
    if (!table_normalized) inverse_norms(is, table, inv.data());
    cosine_topk_small_table(is, q, table, table_normalized ? nullptr : inv.data(), k, scores, indices);
    return;
  }
  Buffer<float> qn(B * H);
  l2_normalize(q, kNormEps, dense_rows(qn.data(), B, H));
  Buffer<float> inv;
  if (!table_normalized) {
    inv.resize(C);
    inverse_norms(is, table, inv.data());
  }

  // Blocks of the table: large enough to amortise packing the queries,
  // small enough that a block's scores stay in cache (B x block floats).
  const int workers = pool_threads();
  int64_t qb = std::min<int64_t>(B, 512);
  int64_t cb = std::max<int64_t>(64, (int64_t{1} << 19) / std::max<int64_t>(1, qb));
  cb = std::min<int64_t>(cb, 4096);
  const int64_t blocks = (C + cb - 1) / cb;
  // Tasks are (table block, query block) pairs. A small table (Emotion6's 6 labels) is one block: then the
  // queries are what splits over the threads.
  if (blocks * ((B + qb - 1) / qb) < workers)
    qb = std::max<int64_t>(std::min<int64_t>(B, 32), (B + workers - 1) / workers);
  const int64_t qblocks = (B + qb - 1) / qb;
  // Per worker: k candidate slots per query, and a score buffer.
  std::vector<Buffer<Candidate>> slots(workers);
  std::vector<std::vector<TopK>> heaps(workers);
  std::vector<Buffer<float>> tiles(workers);
  const size_t es = dtype_size(table.dtype);

  parallel_for(blocks * qblocks, workers, [&](int64_t task, int w) {
    const int64_t blk = task / qblocks, b0 = (task % qblocks) * qb;
    if (heaps[w].empty()) {
      slots[w].resize(static_cast<size_t>(B) * k);
      heaps[w].resize(B);
      for (int64_t b = 0; b < B; ++b) heaps[w][b].reset(slots[w].data() + b * k, k);
      tiles[w].resize(static_cast<size_t>(qb) * cb);
    }
    const int64_t c0 = blk * cb, cn = std::min(cb, C - c0);
    GemmEpilogue ep;
    ep.col_scale = table_normalized ? nullptr : inv.data() + c0;
    const GemmB tb{table.data + c0 * table.stride * static_cast<int64_t>(es), table.dtype, table.stride, false};
    const int64_t bn = std::min(qb, B - b0);
    float* tile = tiles[w].data();
    gemm(bn, cn, H, {qn.data() + b0 * H, H, false}, tb, tile, cn, ep);
    for (int64_t i = 0; i < bn; ++i) {
      TopK& heap = heaps[w][b0 + i];
      const float* row = tile + i * cn;
      for (int64_t j = 0; j < cn; ++j) {
        const Candidate c{row[j], static_cast<int32_t>(c0 + j)};
        // Most scores lose to the current k-th best: one compare.
        if (heap.full() && !better(c, heap.worst())) continue;
        heap.offer(c);
      }
    }
  });

  // Merge the workers' candidates; the total order makes the answer
  // independent of which worker saw which block.
  std::vector<Candidate> all;
  for (int64_t b = 0; b < B; ++b) {
    all.clear();
    for (int w = 0; w < workers; ++w) {
      if (heaps[w].empty()) continue;
      TopK& h = heaps[w][b];
      all.insert(all.end(), h.begin(), h.begin() + h.size());
    }
    std::sort(all.begin(), all.end(), better);
    for (int32_t i = 0; i < k; ++i) {
      scores[b * k + i] = all[i].score;
      indices[b * k + i] = all[i].index;
    }
  }
}

}  // namespace te::cpu
