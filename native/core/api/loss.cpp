#include <cmath>

#include "../../cpu/loss.h"
#include "../dispatch.h"
#include "../tensor.h"

extern "C" TE_API te_status te_metric_loss(const te_tensor* y_, const te_tensor* targets_, const te_tensor* labels_,
                                           int32_t kind, float tau, te_tensor* grad_, te_tensor* loss_) {
  return te::guard([&] {
    const te_tensor& y = te::arg_any(y_, "y");
    const te_tensor& targets = te::arg_any(targets_, "targets");
    const te_tensor& labels = te::arg_any(labels_, "labels");
    const te_tensor& grad = te::arg_any(grad_, "grad");
    const te_tensor& loss = te::arg_any(loss_, "loss");
    if (kind != TE_LOSS_COSINE && kind != TE_LOSS_INFONCE && kind != TE_LOSS_NTXENT)
      te::fail(TE_ERR_INVALID_ARGUMENT, "loss kind %d (0 cosine, 1 infoNCE, 2 NT-Xent)", kind);
    if (!(tau > 0.0f) || !std::isfinite(tau)) te::fail(TE_ERR_INVALID_ARGUMENT, "tau must be a finite number > 0");
    te::expect_dtype(y, "y", {TE_F32});
    te::expect_dtype(labels, "labels", {TE_F32});
    te::expect_dtype(targets, "targets", {TE_I32});
    te::expect_dtype(loss, "loss", {TE_F32});
    te::expect_ndim(y, "y", 2);
    te::expect_ndim(labels, "labels", 2);
    te::expect_ndim(targets, "targets", 1);
    te::expect_ndim(loss, "loss", 1);
    const int64_t B = y.shape[0], C = labels.shape[0];
    te::expect_dim(labels, "labels", 1, y.shape[1], "y's width H");
    te::expect_dim(targets, "targets", 0, B, "B");
    te::expect_dim(loss, "loss", 0, 1, "1");
    if (C < 1) te::fail(TE_ERR_SHAPE, "labels must have at least one row");
    if (C > INT32_MAX) te::fail(TE_ERR_UNSUPPORTED, "more than 2^31 labels");
    te::expect_contiguous(targets, "targets");
    te::expect_writable(loss, "loss");
    const te::Rows rg = te::same_shape_output(y, "y", grad, "grad");
    te::expect_disjoint(grad, "grad", labels, "labels");
    te::expect_disjoint(grad, "grad", targets, "targets");
    te::expect_disjoint(loss, "loss", y, "y");
    te::expect_disjoint(loss, "loss", labels, "labels");
    te::expect_disjoint(loss, "loss", targets, "targets");
    te::expect_disjoint(loss, "loss", grad, "grad");
    const te::Device dev = te::device_of({&y, &targets, &labels, &grad, &loss});
    const auto* t = static_cast<const int32_t*>(targets.data);
    if (dev.type == TE_DEVICE_CPU) {
      // On a GPU the kernel checks them (reading them here would need a copy).
      for (int64_t b = 0; b < B; ++b)
        if (t[b] < 0 || t[b] >= C)
          te::fail(TE_ERR_INVALID_ARGUMENT, "targets[%lld] = %d is not a label index (0..%lld)", (long long)b, t[b],
                   (long long)C - 1);
    }
    TE_DISPATCH(dev, metric_loss, te::as_rows(y, "y"), t, te::as_rows(labels, "labels"), kind, tau, rg,
                static_cast<float*>(loss.data));
  });
}

extern "C" TE_API te_status te_cross_entropy(const te_tensor* logits_, const te_tensor* targets_, float scale,
                                             te_tensor* grad_, te_tensor* loss_) {
  return te::guard([&] {
    const te_tensor& logits = te::arg_any(logits_, "logits");
    const te_tensor& targets = te::arg_any(targets_, "targets");
    const te_tensor& grad = te::arg_any(grad_, "grad");
    const te_tensor& loss = te::arg_any(loss_, "loss");
    if (!std::isfinite(scale)) te::fail(TE_ERR_INVALID_ARGUMENT, "scale must be finite");
    te::expect_dtype(logits, "logits", {TE_F32});
    te::expect_dtype(targets, "targets", {TE_I32});
    te::expect_dtype(loss, "loss", {TE_F32});
    te::expect_ndim(logits, "logits", 2);
    te::expect_ndim(targets, "targets", 1);
    te::expect_ndim(loss, "loss", 1);
    const int64_t R = logits.shape[0], V = logits.shape[1];
    if (V < 1) te::fail(TE_ERR_SHAPE, "logits must have at least one column");
    if (V > INT32_MAX) te::fail(TE_ERR_UNSUPPORTED, "a vocabulary over 2^31 tokens");
    te::expect_dim(targets, "targets", 0, R, "the logits' rows");
    te::expect_dim(loss, "loss", 0, 1, "1");
    te::expect_contiguous(targets, "targets");
    te::expect_writable(loss, "loss");
    const te::Rows rg = te::same_shape_output(logits, "logits", grad, "grad");
    te::expect_disjoint(grad, "grad", targets, "targets");
    te::expect_disjoint(loss, "loss", logits, "logits");
    te::expect_disjoint(loss, "loss", targets, "targets");
    te::expect_disjoint(loss, "loss", grad, "grad");
    const te::Device dev = te::device_of({&logits, &targets, &grad, &loss});
    const auto* t = static_cast<const int32_t*>(targets.data);
    if (dev.type == TE_DEVICE_CPU) {
      for (int64_t r = 0; r < R; ++r)
        if (t[r] >= V || (t[r] < 0 && t[r] != TE_IGNORE_INDEX))
          te::fail(TE_ERR_INVALID_ARGUMENT,
                   "targets[%lld] = %d is neither a token id (0..%lld) nor the ignore index %d", (long long)r, t[r],
                   (long long)V - 1, TE_IGNORE_INDEX);
    }
    TE_DISPATCH(dev, cross_entropy, te::as_rows(logits, "logits"), t, scale, rg, static_cast<float*>(loss.data));
  });
}
