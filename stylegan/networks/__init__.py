"""Network definitions. They know nothing of files: loaders in `stylegan.loaders` build them."""
from . import stylegan2, stylegan3  # noqa: F401  (registers the architectures)
from .registry import (UnknownArchError, create_model, is_architecture, list_archs, list_configs, register_arch,
                       register_config)

__all__ = ["UnknownArchError", "create_model", "is_architecture", "list_archs", "list_configs", "register_arch",
           "register_config"]
