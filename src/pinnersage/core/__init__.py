"""The paper's algorithms as pure functions: numpy, scipy and numba only; no I/O, no clock.

One module per concept: :mod:`.ward` (Algorithm 1), :mod:`.medoid` (Eq. 2),
:mod:`.importance` (Eq. 3), :mod:`.profile` (Algorithm 2), :mod:`.sampling` (medoid sampling),
:mod:`.baselines` (single-embedding baselines and the paper's ablations).
"""
