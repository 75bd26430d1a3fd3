#include "../../cpu/metric.h"
#include "../dispatch.h"
#include "../tensor.h"

namespace {

void check_pair(const te_tensor& q, const te_tensor& table) {
  te::expect_dtype(q, "queries", {TE_F32});
  te::expect_dtype(table, "table", {TE_F32, TE_F16, TE_BF16});
  te::expect_ndim(q, "queries", 2);
  te::expect_ndim(table, "table", 2);
  te::expect_dim(table, "table", 1, q.shape[1], "the queries' width H");
}

}  // namespace

extern "C" TE_API te_status te_l2_normalize(const te_tensor* x_, te_tensor* y_, float eps) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    te::expect_dtype(x, "x", {TE_F32});
    const te::Rows ry = te::same_shape_output(x, "x", y, "y");
    if (!(eps >= 0.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "eps must be >= 0");
    TE_DISPATCH(te::device_of({&x, &y}), l2_normalize, te::as_rows(x, "x"), eps, ry);
  });
}

extern "C" TE_API te_status te_cosine(const te_tensor* q_, const te_tensor* table_, te_tensor* out_) {
  return te::guard([&] {
    const te_tensor& q = te::arg_any(q_, "queries");
    const te_tensor& table = te::arg_any(table_, "table");
    const te_tensor& out = te::arg_any(out_, "out");
    check_pair(q, table);
    te::expect_dtype(out, "out", {TE_F32});
    te::expect_ndim(out, "out", 2);
    te::expect_dim(out, "out", 0, q.shape[0], "B");
    te::expect_dim(out, "out", 1, table.shape[0], "C");
    te::expect_writable(out, "out");
    te::expect_disjoint(out, "out", q, "queries");
    te::expect_disjoint(out, "out", table, "table");
    const te::Rows ro = te::as_rows(out, "out");
    TE_DISPATCH(te::device_of({&q, &table, &out}), cosine, te::as_rows(q, "queries"), te::as_rows(table, "table"),
                static_cast<float*>(out.data), ro.stride);
  });
}

extern "C" TE_API te_status te_cosine_topk(const te_tensor* q_, const te_tensor* table_, int32_t table_normalized,
                                           int32_t k, te_tensor* scores_, te_tensor* indices_) {
  return te::guard([&] {
    const te_tensor& q = te::arg_any(q_, "queries");
    const te_tensor& table = te::arg_any(table_, "table");
    const te_tensor& scores = te::arg_any(scores_, "scores");
    const te_tensor& indices = te::arg_any(indices_, "indices");
    check_pair(q, table);
    const int64_t B = q.shape[0], C = table.shape[0];
    if (k < 1 || k > C)
      te::fail(TE_ERR_INVALID_ARGUMENT, "k = %d must be in 1..%lld (the table's rows)", k, (long long)C);
    if (C > INT32_MAX) te::fail(TE_ERR_UNSUPPORTED, "tables of more than 2^31 rows");
    te::expect_dtype(scores, "scores", {TE_F32});
    te::expect_dtype(indices, "indices", {TE_I32});
    te::expect_ndim(scores, "scores", 2);
    te::expect_ndim(indices, "indices", 2);
    te::expect_dim(scores, "scores", 0, B, "B");
    te::expect_dim(scores, "scores", 1, k, "k");
    te::expect_dim(indices, "indices", 0, B, "B");
    te::expect_dim(indices, "indices", 1, k, "k");
    te::expect_contiguous(scores, "scores");
    te::expect_contiguous(indices, "indices");
    te::expect_disjoint(scores, "scores", indices, "indices");
    te::expect_disjoint(scores, "scores", q, "queries");
    te::expect_disjoint(scores, "scores", table, "table");
    te::expect_disjoint(indices, "indices", q, "queries");
    te::expect_disjoint(indices, "indices", table, "table");
    TE_DISPATCH(te::device_of({&q, &table, &scores, &indices}), cosine_topk, te::as_rows(q, "queries"),
                te::as_rows(table, "table"), table_normalized != 0, k, static_cast<float*>(scores.data),
                static_cast<int32_t*>(indices.data));
  });
}
