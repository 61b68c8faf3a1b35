"""Everything downloadable, in one place: the registry (GAN networks, perceptual networks, dlib's face
models, latent directions) and the cache that resolves a path, URL or registry name to a local file."""
from .download import (DEFAULT_TIMEOUT, DownloadError, Progress, cache_path, cached, default_cache_dir, download,
                       entry_path, fetch, is_url, package_file, packaged, resolve, torch_hub_file, where)
from .registry import (FORMATS, KINDS, Entry, NotFoundError, UnknownModelError, close_names, entries, gan_config,
                       is_known, lookup, names, suggestion)

__all__ = ["DEFAULT_TIMEOUT", "DownloadError", "Progress", "cache_path", "cached", "default_cache_dir", "download",
           "entry_path", "fetch", "is_url", "package_file", "packaged", "resolve", "torch_hub_file", "where",
           "FORMATS", "KINDS", "Entry", "NotFoundError", "UnknownModelError", "close_names", "entries", "gan_config",
           "is_known", "lookup", "names", "suggestion"]
