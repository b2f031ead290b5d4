"""Student's t tests for the scripts that print the docs' tables from committed files:
Welch's (two samples as mean, sample std, n) and the paired test of per-seed shifts, with
the regularized incomplete beta function they need (no SciPy on a bare Python)."""
import math


def betacf(a, b, x):
    """The continued fraction of the regularized incomplete beta function (Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a, b, x):
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * betacf(a, b, x) / a
    return 1.0 - front * betacf(b, a, 1 - x) / b


def welch(m1, s1, n1, m2, s2, n2):
    """Welch's t-test of two samples given as mean, sample std and n: (t, df, two-sided p)."""
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    t = (m1 - m2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    return t, df, incomplete_beta(df / 2, 0.5, df / (df + t * t))


def paired(shifts):
    """The paired t-test of per-seed shifts against zero: (mean, sample std, two-sided p)."""
    n = len(shifts)
    mean = sum(shifts) / n
    std = math.sqrt(sum((s - mean) ** 2 for s in shifts) / (n - 1))
    t = mean / (std / math.sqrt(n)) if std > 0 else math.inf
    df = n - 1
    return mean, std, 0.0 if math.isinf(t) else incomplete_beta(df / 2, 0.5, df / (df + t * t))


def mean_std(values):
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def p_text(p):
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
