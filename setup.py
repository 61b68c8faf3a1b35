from setuptools import setup, find_packages

setup(
    name="stylegan",
    version="0.1.0",
    description="StyleGAN face synthesis and latent editing: NVIDIA-exact networks, safe loaders, pipelines.",
    python_requires=">=3.9",
    packages=find_packages(include=["stylegan", "stylegan.*", "torch_utils", "torch_utils.*", "ops", "ops.*", "scripts"]),
    package_data={"ops": ["*.cu", "*.cpp", "*.h"]},
    install_requires=[
        "torch>=2.1",
        "ninja",
        "numpy",
        "pillow",
        "click>=8",
        "scipy",
        "imageio",
        # mp4 output: its wheel bundles an ffmpeg binary, so videos work without a system ffmpeg.
        "imageio-ffmpeg",
        # Our own file format: tensors plus a JSON header, no pickled code (see stylegan/loaders/native.py).
        "safetensors>=0.4",
    ],
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["stylegan=scripts.cli:main"]},
)
