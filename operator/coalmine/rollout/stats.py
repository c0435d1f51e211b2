"""The statistics behind the comparison checks, from scipy.stats and scipy.special.

Why these tests:

* **Counts vs stable, sequentially: a one-sided mixture SPRT** (``share_worse_e_value``), after
  Lindon, Sanden and Shirikian, *Rapid Regression Detection in Software Deployments through
  Sequential Testing* (KDD 2022). Given how many events (server errors, wrong answers) both
  sides had, the canary's share of them is binomial with the canary's share of the requests
  when the canary is no worse. The mixture likelihood ratio is an e-process: whatever the
  number of looks, it exceeds 1/alpha with probability at most alpha (Ville's inequality), so
  the check may look as often as the metrics are scraped. Derived in docs/analysis.md.
  Latency vs stable uses it too, with "slow request" for "event" (``judge_traffic``).

* **Error rate vs stable: Fisher's exact test, one-sided** (``alternative="greater"``) on the
  2x2 table of (errors, successes) x (canary, stable). Canary error counts are small (a 10%
  canary at 1% errors sees a handful of errors a minute), which is exactly where the normal
  approximation of a two-proportion z-test is wrong and anti-conservative. Fisher is exact for
  any counts and errs on the side of *not* rejecting, which is the side we want: a tiny, noisy
  canary must not roll back by chance. A Bayesian beta posterior would need a prior we cannot
  justify per model; Fisher needs none.
* **Accuracy: the Wilson score bound.** It stays inside [0, 1] and keeps its coverage at small
  counts and at accuracies near 1, where the Wald interval collapses (100/100 correct gives a
  Wald interval of width zero). ``z`` comes from ``scipy.special.ndtri``.
* **Drift, sequentially: a mixture likelihood ratio on the bin counts** (``drift_e_value``), the
  multinomial test of Lindon et al. with the unknown traffic share fitted instead of assumed;
  failed only when PSI is above the limit as well, so a tiny but certain drift does not roll
  back.
* **Drift: PSI and chi-square with Cramér's V.** PSI is the industry's drift score with
  well-known bands (0.1 small, 0.25 large). The chi-square test says whether a difference is
  real; Cramér's V says whether it is large, so big traffic does not fail a trivial shift.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing
from scipy import optimize, special, stats

# A bin seen on one side only would make PSI infinite; we floor each share at this value,
# the convention of most PSI implementations (1e-4 = "one in ten thousand").
PSI_EPSILON = 1e-4


MIXTURE_CONCENTRATION = 10.0
"""kappa of the beta mixture over the canary's share of events, centred on the null share:
Beta(kappa * share, kappa * (1 - share)) cut to shares above it. Its spread (about 0.15 at a
50% canary) matches the regressions worth catching (a doubled error rate moves a 50% canary's
share of errors from 0.5 to 0.67, a 10% canary's from 0.1 to 0.18); simulated in
docs/analysis.md against 3 and 30."""


def share_worse_e_value(
    canary_events: int,
    canary_n: int,
    stable_events: int,
    stable_n: int,
    concentration: float = MIXTURE_CONCENTRATION,
) -> float:
    """E-value that the canary's event rate (errors, wrong answers) is above stable's.

    Conditional on the total number of events, the canary's count is Binomial(total, rho);
    when the canary is no worse, rho <= rho0 = canary_n / (canary_n + stable_n). The
    one-sided mixture likelihood ratio of a Beta(kappa rho0, kappa (1 - rho0)) cut to
    rho > rho0 against rho0 is, in closed form,

        B(a + x, b + E - x) P(rho > rho0 | a + x, b + E - x)
        ---------------------------------------------------   /  rho0^x (1 - rho0)^(E - x)
                     B(a, b) P(rho > rho0 | a, b)

    It is a non-negative supermartingale in the events when the canary is no worse, so
    P(it ever reaches 1 / alpha) <= alpha however often it is looked at.

    >>> share_worse_e_value(0, 100, 0, 900)       # no events, no evidence
    1.0
    >>> share_worse_e_value(2, 100, 10, 1000) < 2    # 2% vs 1%, a handful of errors
    True
    >>> share_worse_e_value(20, 100, 10, 1000) > 1000   # 20% vs 1%
    True
    """
    if canary_events + stable_events == 0 or canary_n <= 0 or stable_n <= 0:
        return 1.0
    rho0 = canary_n / (canary_n + stable_n)
    return binomial_worse_e_value(canary_events, canary_events + stable_events, rho0, concentration)


def binomial_worse_e_value(
    hits: int, trials: int, p0: float, concentration: float = MIXTURE_CONCENTRATION
) -> float:
    """E-value that ``hits`` among ``trials`` independent trials come from a hit probability
    above ``p0``: the beta-mixture likelihood ratio of ``share_worse_e_value``, one sample.
    Latency vs stable uses it for the canary's requests slower than the allowed boundary
    (``p0`` = 1 - quantile).

    >>> binomial_worse_e_value(1, 100, 0.01) < 1    # 1 slow request in 100 at p99: as allowed
    True
    >>> binomial_worse_e_value(10, 100, 0.01) > 40  # 10 in 100: the p99 is beyond the boundary
    True
    """
    return math.exp(min(binomial_worse_log_e(hits, trials, p0, concentration), 700.0))


def binomial_worse_log_e(
    hits: int, trials: int, p0: float, concentration: float = MIXTURE_CONCENTRATION
) -> float:
    """ln of ``binomial_worse_e_value`` (kept in logs where it is inverted: an e-value far
    below 1 underflows to 0, whose log is no number).

    >>> binomial_worse_log_e(0, 0, 0.5)
    0.0
    """
    if trials <= 0:
        return 0.0
    a, b = concentration * p0, concentration * (1 - p0)
    x, y = hits, trials - hits
    mixture = special.betaln(a + x, b + y) + _log_beta_sf(p0, a + x, b + y)
    prior = special.betaln(a, b) + _log_beta_sf(p0, a, b)
    null = x * math.log(p0) + y * math.log1p(-p0)
    return float(mixture - prior - null)


def confidence_sequence(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided bounds (lower, upper) of a success probability that hold, each with
    ``confidence``, at every n at once: a confidence sequence, so a limit may be checked
    against them at any number of looks (Wilson's bounds hold at one n only).

    The bounds invert the beta-mixture test of ``binomial_worse_e_value``: the lower bound is
    the smallest p0 the test of "above p0" does not reject at alpha = 1 - confidence, the upper
    one the largest p0 the test of "below p0" does not reject. By Ville's inequality the true
    p is ever above the upper (or below the lower) bound with probability at most alpha.

    >>> low, high = confidence_sequence(95, 100, 0.95)
    >>> round(low, 3), round(high, 3)           # wider than Wilson's (0.901, 0.975)
    (0.867, 0.989)
    >>> confidence_sequence(0, 0, 0.95)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    threshold = math.log(1 / (1 - confidence))
    phat = successes / n

    def above(p0: float) -> float:  # > 0 where the test of "p > p0" rejects: p0 too low
        return binomial_worse_log_e(successes, n, p0) - threshold

    def below(p0: float) -> float:  # > 0 where the test of "p < p0" rejects: p0 too high
        return binomial_worse_log_e(n - successes, n, 1 - p0) - threshold

    lowest, highest = 1e-9, 1 - 1e-9
    middle = min(max(phat, lowest), highest)
    low = 0.0 if above(lowest) <= 0 else _crossing(above, lowest, middle)
    high = 1.0 if below(highest) <= 0 else _crossing(below, highest, middle)
    return low, high


def _crossing(f: Callable[[float], float], outer: float, inner: float) -> float:
    """Where ``f``, positive at ``outer``, falls to 0 on the way to ``inner`` (to 1e-6: bounds
    are shown with 4 digits); ``inner`` when it never does."""
    if f(inner) > 0:
        return inner
    return float(optimize.brentq(f, min(outer, inner), max(outer, inner), xtol=1e-6))


def _log_beta_sf(x: float, a: float, b: float) -> float:
    """ln P(X > x) for X ~ Beta(a, b) (scipy.special directly: the power study calls it a
    million times, and scipy.stats.beta.logsf costs 20x more in argument checks)."""
    with np.errstate(divide="ignore"):
        return float(np.log(special.betaincc(a, b, x)))


DRIFT_CONCENTRATION = 10.0
"""kappa of the per-bin beta mixture of ``drift_e_value``, centred on the step's traffic share:
at a 10% canary it beat a uniform prior (20 req/s, PSI 0.26: 72% vs 37% caught in one
minute) and kappa 4 (60%) in a direct simulation (docs/analysis.md)."""


def drift_e_value(
    canary: Sequence[float],
    stable: Sequence[float],
    share: float = 0.5,
    concentration: float = DRIFT_CONCENTRATION,
) -> float:
    """E-value that the canary's counts per bin (classes, buckets) are not distributed like
    stable's.

    Given the bin of each request, the side that served it is Bernoulli(rho) in every bin when
    the two distributions are equal, with rho the canary's traffic share, whatever it is. The
    numerator lets each bin have its own rho_k, mixed over a Beta(kappa share, kappa (1 - share))
    (``share`` must be fixed before the data: the step's target weight); the denominator is the
    null's best fit, rho = the canary's observed share of all requests, so the ratio is below the
    mixture martingale of any true rho and never reaches 1 / alpha with probability above alpha
    (universal inference with a running maximum likelihood, Wasserman, Ramdas and Balakrishnan
    2020). In closed form:

        prod_k B(a + c_k, b + s_k) / B(a, b)   /   rho^C (1 - rho)^S,    rho = C / (C + S)

    >>> drift_e_value([100, 100], [900, 900], share=0.1) < 1     # the same shape: no evidence
    True
    >>> drift_e_value([160, 40], [900, 900], share=0.1) > 100    # 80/20 against 50/50
    True
    >>> drift_e_value([0, 0], [900, 900])                         # no canary data
    1.0
    """
    c = np.rint(np.asarray(canary, dtype=np.float64))
    s = np.rint(np.asarray(stable, dtype=np.float64))
    total_c, total_s = float(c.sum()), float(s.sum())
    if total_c <= 0 or total_s <= 0:
        return 1.0
    share = min(max(share, 1e-3), 1 - 1e-3)
    a, b = concentration * share, concentration * (1 - share)
    mixture = float(np.sum(special.betaln(a + c, b + s) - special.betaln(a, b)))
    rho = total_c / (total_c + total_s)
    best_null = total_c * math.log(rho) + total_s * math.log1p(-rho)
    return math.exp(min(mixture - best_null, 700.0))


def error_rate_worse_p(
    canary_errors: int, canary_n: int, stable_errors: int, stable_n: int
) -> float:
    """One-sided p-value that the canary's error rate is greater than stable's.

    >>> round(error_rate_worse_p(2, 100, 10, 1000), 3)   # 2% vs 1%: could easily be chance
    0.299
    >>> error_rate_worse_p(20, 100, 10, 1000) < 1e-6      # 20% vs 1%: certainly worse
    True
    """
    table = [
        [canary_errors, canary_n - canary_errors],
        [stable_errors, stable_n - stable_errors],
    ]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def accuracy_worse_p(
    canary_correct: int, canary_n: int, stable_correct: int, stable_n: int
) -> float:
    """One-sided p-value that the canary's accuracy is lower than stable's (Fisher, exact)."""
    table = [
        [canary_correct, canary_n - canary_correct],
        [stable_correct, stable_n - stable_correct],
    ]
    return float(stats.fisher_exact(table, alternative="less").pvalue)


def wilson_bounds(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """One-sided Wilson score bounds (lower, upper), each holding with ``confidence``.

    >>> low, high = wilson_bounds(95, 100, 0.95)
    >>> round(low, 3), round(high, 3)
    (0.901, 0.975)
    >>> [round(b, 3) for b in wilson_bounds(100, 100, 0.95)]   # Wald would say [1, 1]
    [0.974, 1.0]
    """
    if n <= 0:
        return 0.0, 1.0
    z = float(special.ndtri(confidence))  # the standard normal quantile (scipy.stats.norm.ppf)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _shares(counts: Sequence[float]) -> np.typing.NDArray[np.float64]:
    arr = np.asarray(counts, dtype=np.float64)
    shares: np.typing.NDArray[np.float64] = np.maximum(arr / arr.sum(), PSI_EPSILON)
    return shares


def psi(canary: Sequence[float], stable: Sequence[float]) -> float:
    """Population stability index of two aligned count vectors: sum (c - s) * ln(c / s).

    >>> psi([50, 50], [50, 50])
    0.0
    >>> round(psi([80, 20], [50, 50]), 3)   # a clear shift: above the 0.25 "large" band
    0.416
    """
    c, s = _shares(canary), _shares(stable)
    return float(np.sum((c - s) * np.log(c / s)))


def psi_noise(canary: Sequence[float], stable: Sequence[float]) -> float:
    """The PSI two samples of one distribution show on average: (k - 1) (1/C + 1/S) for k
    bins seen and C, S values on each side (PSI is close to sum (c - s)^2 / s, whose mean under
    no drift is that). At a 10% canary of 20 req/s and ten bins, about 0.08 after a minute:
    subtracted before PSI is compared with its limit, so the noise of a small sample does not
    pass for a large drift.

    >>> round(psi_noise([60, 60], [540, 540]), 4)     # two bins, 120 vs 1080 values
    0.0093
    """
    c, s = np.asarray(canary, dtype=np.float64), np.asarray(stable, dtype=np.float64)
    total_c, total_s = float(c.sum()), float(s.sum())
    if total_c <= 0 or total_s <= 0:
        return 0.0
    seen = int(np.count_nonzero(c + s))
    return max(seen - 1, 0) * (1 / total_c + 1 / total_s)


def chi_square_drift(canary: Sequence[float], stable: Sequence[float]) -> tuple[float, float]:
    """(p-value, Cramér's V) of the 2 x k contingency table canary-vs-stable.

    Bins empty on both sides are dropped (they carry no information and break the test).

    >>> p, v = chi_square_drift([80, 20], [50, 50])
    >>> p < 0.001, round(v, 3)
    (True, 0.314)
    """
    table = np.array([canary, stable], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0, 0.0  # one class only: the two distributions cannot differ
    result = stats.chi2_contingency(table, correction=False)
    # Cramér's V = sqrt(chi2 / (n * (min(rows, cols) - 1))); with two rows the divisor is n.
    v = math.sqrt(float(result.statistic) / float(table.sum()))
    return float(result.pvalue), v
