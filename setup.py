"""GLIDE for MMagic: text-to-image diffusion as an OpenMMLab/MMagic project."""
from setuptools import find_packages, setup

setup(
    name='glide-mmagic',
    version='0.1.0',
    description='GLIDE (Nichol et al., ICML 2022) for MMagic: exact, fast, trainable.',
    packages=find_packages(include=['projects', 'projects.*']),
    python_requires='>=3.11',
    install_requires=[
        'torch', 'torchvision', 'mmcv', 'mmengine', 'mmagic', 'safetensors',
        'tiktoken', 'tqdm'
    ],
)
