"""Network definitions. They know nothing of files: loaders in `stylegan.loaders` build them."""
from .registry import create_model, list_archs, list_configs, register_arch, register_config

__all__ = ["create_model", "list_archs", "list_configs", "register_arch", "register_config"]
