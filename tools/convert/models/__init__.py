"""TorchScript-scriptable re-implementations of the diffusers / transformers modules.

Module and parameter names are identical to the diffusers / transformers state_dict keys, so
checkpoint weights (and LoRA keys) map 1:1.  Every constructor takes ``dd`` (device/dtype
factory kwargs) so a model can be built on the meta device for counting or strict checks.
"""
