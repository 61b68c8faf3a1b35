"""Everything downloadable, in one place: the registry (GAN networks, a perceptual network, dlib's face
models) and the cache that resolves a path, URL or registry name to a local file."""
from .download import (DEFAULT_TIMEOUT, DownloadError, Progress, cache_path, cached, default_cache_dir, download,
                       entry_path, fetch, is_url, packaged, resolve)
from .registry import (KINDS, Entry, NotFoundError, UnknownModelError, close_names, entries, is_known, lookup,
                       names)

__all__ = ["DEFAULT_TIMEOUT", "DownloadError", "Progress", "cache_path", "cached", "default_cache_dir", "download",
           "entry_path", "fetch", "is_url", "packaged", "resolve", "KINDS", "Entry", "NotFoundError",
           "UnknownModelError", "close_names", "entries", "is_known", "lookup", "names"]
