"""oldphoto_bench: old photo restoration via deep latent space translation (Wan et al., CVPR 2020).

Conventions used everywhere in the library:
  * images are ``torch.float32`` tensors shaped ``(N, 3, H, W)`` (NCHW), RGB, values in ``[0, 1]``;
    conversions to and from files and arrays live in :mod:`oldphoto_bench.imageio` only;
  * every random function takes a seed or a generator; no global random state is touched;
  * nothing touches the network at import or construction time.
"""

__version__ = "0.1.0"
