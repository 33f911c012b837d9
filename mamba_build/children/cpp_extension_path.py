"""Child script (mamba_build/build/torch_patch.py): emits the path of torch/utils/cpp_extension.py without importing
torch (which takes seconds); exit status 3 when torch is not installed."""

import importlib.util
import os
import sys

from _mb_child import emit

s = importlib.util.find_spec("torch")
if s is None or not s.submodule_search_locations:
    sys.exit(3)
emit(os.path.join(list(s.submodule_search_locations)[0], "utils", "cpp_extension.py"))
