"""llc_core: estimate the local learning coefficient λ̂ of neural networks with SGLD.

Never imports streamlit: the dashboard in pages/ is a thin UI over this package.
"""

from .config import ConfigError, InputError, SGLDConfig, default_nbeta
from .sampler import LLCResult, Progress, SGLDRun, estimate_llc
from .task import LLCTask, full_loss

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "InputError", "LLCResult", "LLCTask", "Progress", "SGLDConfig", "SGLDRun",
    "__version__", "default_nbeta", "estimate_llc", "full_loss",
]
