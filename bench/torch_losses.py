"""The Metric Projector's losses in PyTorch, pair by pair as lib/ops/loss.ts
defines them (written apart from tinyemo's kernels, which fold NT-Xent's pairs
into class counts): the GPU check's reference and the benchmarks' baseline.
autograd gives the gradient."""
import torch
import torch.nn.functional as F


def metric_loss(name, y, targets, labels, tau):
    """y [B, H], targets [B] (int64), labels [C, H] unit rows -> the scalar loss."""
    S = F.normalize(y, dim=1, eps=1e-12) @ labels.T  # [B, C]: cos(y_b, L_c)
    B, C = S.shape
    own = S.gather(1, targets[:, None])[:, 0]
    if name == "cosine":
        return (1 - own).mean()
    if name == "infonce":
        # Candidates: the own label and every other label present in the batch.
        present = torch.zeros(C, dtype=torch.bool, device=S.device)
        present[targets] = True
        logits = (S / tau).masked_fill(~present[None, :], float("-inf"))
        return (torch.logsumexp(logits, 1) - own / tau).mean()
    # NT-Xent: reference embedding j is L_{t_j}; pairs (b, p) with t_p == t_b, negatives j with t_j != t_b.
    s = S[:, targets] / tau  # [B, B]
    same = targets[:, None] == targets[None, :]
    neg = torch.logsumexp(s.masked_fill(same, float("-inf")), 1)  # -inf where a row has no negatives
    per_pair = torch.logaddexp(s, neg[:, None]) - s
    return per_pair[same].mean()
