"""Every cap and limit in one place: what keeps a crafted request (URL, CLI, API, upload) from
starting a runaway job or reading a huge file. The library's caps are the outer bounds; the
dashboard's are tighter because a room shares one server."""

# -- one estimate (library, CLI) -----------------------------------------------------------
MAX_CHAINS = 64
MAX_DRAWS = 200_000
MAX_BURNIN = 200_000
MAX_THIN = 1_000
MAX_TRACE_POINTS = 20_000  # per chain, kept by halving the resolution
# Outer bounds on the real-valued settings: far beyond any useful value (ε near 1 already
# diverges every toy), there only so a typo cannot overflow the arithmetic.
MAX_EPSILON = 10.0
MAX_GAMMA = 1e8
MAX_NBETA = 1e12
MAX_NOISE_SCALE = 100.0
MAX_SEED = 2**63 - 1

# -- one estimate started from the dashboard (also for values arriving in a URL) -------------
UI_MAX_CHAINS = 32
UI_MAX_DRAWS = 20_000
UI_MAX_BURNIN = 20_000
UI_MAX_THIN = 100
LIVE_POINTS = 2_000  # per chain: Plotly re-sends figures whole, so live traces stay this small

# -- run history (dashboard, llc_core/history.py): per browser, newest kept -----------------
HISTORY_MAX_RUNS = 50  # older runs are deleted when a new one is saved
HISTORY_TRACE_POINTS = 300  # per chain: enough to overlay traces, ~30 kB a run
HISTORY_MAX_FILE_BYTES = 2 * 1024 * 1024  # a bigger file in the history folder is not ours: skipped

# -- sweeps (Calibrate page, `sweep`, auto-calibrate's pilot) --------------------------------
MAX_SWEEP_CELLS = 60
MAX_SWEEP_CHAIN_STEPS = 3_000_000  # Σ over cells of chains × (burn-in + draws·thin)
MAX_CELL_CHAINS = 8
MAX_CELL_DRAWS = 5_000
MAX_CELL_BURNIN = 5_000

# -- auto-calibrate: its wall-clock budget (CLI --budget-seconds, the Calibrate page) ---------
MIN_BUDGET_SECONDS, MAX_BUDGET_SECONDS = 1, 86_400

# -- task variability: per run; 54 runs of the CNN at this length already take about an hour --
MAX_VARIABILITY_DRAWS = 2_000
MAX_VARIABILITY_CHAINS = 8

# -- dimensions (Hessian spectrum, intrinsic dimension; CLI `dimensions`, the Dimensions page) --
# Here rather than in hessian.py / intrinsic_dim.py so the CLI can state them without importing torch.
MAX_EIGENVALUES = 200
MAX_PROBES = 10_000
MAX_SUBSPACE_STEPS = 100_000
DEFAULT_RANK_RTOL = 1e-6  # not a cap: an eigenvalue counts towards the rank when |h| > rtol · max |h|

# -- training ----------------------------------------------------------------------------
MAX_EPOCHS = 1_000

# -- known-λ toys --------------------------------------------------------------------------
MAX_CROSSING_PARAMS = 6
MAX_DLN_WIDTH = 64  # on CPU; see DLN_CAPS for other devices
# Per device: (widest layer, parameter count). CPU: 64 wide, ≤ 40k parameters (a 64-wide 8-layer
# net is 32,768; a DLN run of that size takes minutes on 2 cores). CUDA: the truth suite's GPU
# target is ≥ 1M parameters; 4M keeps a 100k-example run within one H100's memory.
DLN_CAPS = {"cpu": (MAX_DLN_WIDTH, 40_000), "cuda": (4096, 4_000_000)}
MAX_DLN_LAYERS = 8

# -- checkpoint files (load and upload) ----------------------------------------------------
MAX_WEIGHTS_BYTES = 50 * 1024 * 1024
MAX_METADATA_BYTES = 256 * 1024
