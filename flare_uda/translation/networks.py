"""CycleGAN networks for ``spatial_dims`` 2 and 3: a ResNet generator and a PatchGAN.

The discriminator is MONAI's :class:`monai.networks.nets.PatchDiscriminator`
(the pix2pix/CycleGAN PatchGAN) returning only its last output. MONAI has no
CycleGAN ResNet generator (reflection padding, residual bottleneck, transposed
convolutions, tanh), so it is written here from MONAI's layer factories.
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Conv, Norm
from monai.networks.nets import PatchDiscriminator
from torch import nn

_REFLECTION_PAD = {2: nn.ReflectionPad2d, 3: nn.ReflectionPad3d}
_LAYOUT = {2: "b c y x", 3: "b c z y x"}
_EDGE = 1.0 - 1e-4  # atanh(+-_EDGE) = +-4.95: tanh gives the input back within 1e-4


def check_input(x: torch.Tensor, spatial_dims: int, channels: int, what: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a batch with ``spatial_dims`` spatial axes."""
    if x.ndim != spatial_dims + 2:
        raise ValueError(
            f"{what} with spatial_dims={spatial_dims} expects '{_LAYOUT[spatial_dims]}' "
            f"({spatial_dims + 2}D), got shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(f"{what} expects {channels} input channel(s), got {x.shape[1]}")


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")


class ResidualBlock(nn.Module):
    """pad-conv-norm-relu-pad-conv-norm plus the identity (reference CycleGAN block)."""

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        conv, norm = Conv[Conv.CONV, spatial_dims], Norm[Norm.INSTANCE, spatial_dims]
        pad = _REFLECTION_PAD[spatial_dims]
        self.body = nn.Sequential(
            pad(1),
            conv(channels, channels, 3),
            norm(channels),
            nn.ReLU(inplace=True),
            pad(1),
            conv(channels, channels, 3),
            norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN ResNet generator (Johnson et al.), 2D or 3D.

    Parameters
    ----------
    spatial_dims : {2, 3}
        Input layout ``"b c y x"`` or ``"b c z y x"``.
    in_channels, out_channels : int
    width : int
        Channels after the first 7x7 convolution (ngf); doubled at each downsampling.
    n_blocks : int
        Residual blocks at the lowest resolution.
    n_downsampling : int
        Stride-2 convolutions; spatial sizes must be multiples of ``2 ** n_downsampling``.
    residual : bool
        ``tanh(atanh(x) + f(x))`` with the last convolution of ``f`` zero at start:
        the untrained generator is the identity on [-1, 1] images (needs
        ``in_channels == out_channels``). ``False``: the reference ``tanh(f(x))``.

    Output is ``tanh``-bounded in [-1, 1], same shape as the input.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        residual: bool = False,
    ) -> None:
        super().__init__()
        _check_dims(spatial_dims)
        if residual and in_channels != out_channels:
            raise ValueError(
                f"a residual generator needs in_channels == out_channels, "
                f"got {in_channels} and {out_channels}"
            )
        self.residual = residual
        self.spatial_dims, self.in_channels = spatial_dims, in_channels
        self.factor = 2**n_downsampling
        conv, convt = Conv[Conv.CONV, spatial_dims], Conv[Conv.CONVTRANS, spatial_dims]
        norm, pad = Norm[Norm.INSTANCE, spatial_dims], _REFLECTION_PAD[spatial_dims]
        layers: list[nn.Module] = [pad(3), conv(in_channels, width, 7), norm(width), nn.ReLU(True)]
        ch = width
        for _ in range(n_downsampling):
            layers += [conv(ch, ch * 2, 3, stride=2, padding=1), norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(spatial_dims, ch) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                convt(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                norm(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        last = conv(ch, out_channels, 7)
        if residual:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers += [pad(3), last] if residual else [pad(3), last, nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate a batch ``"b c (z) y x"`` (sizes multiples of ``self.factor``)."""
        check_input(x, self.spatial_dims, self.in_channels, "ResnetGenerator")
        bad = [s for s in x.shape[2:] if s % self.factor]
        if bad:
            raise ValueError(
                f"ResnetGenerator expects spatial sizes that are multiples of {self.factor}, "
                f"got {tuple(x.shape[2:])}; pad the input first"
            )
        if self.residual:  # the input's pre-tanh value, kept finite at +-1
            return torch.tanh(torch.atanh(x.clamp(-_EDGE, _EDGE)) + self.model(x))
        return self.model(x)


class PatchGANDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch (MONAI's PatchDiscriminator).

    Parameters
    ----------
    spatial_dims : {2, 3}
    in_channels : int
    width : int
        Channels of the first layer (ndf).
    n_layers : int
        Strided layers after the first (reference: 3).

    Returns logits ``"b 1 (z') y' x'"`` (raw, no sigmoid).
    """

    def __init__(self, spatial_dims: int, in_channels: int = 1, width: int = 64, n_layers: int = 3):
        super().__init__()
        _check_dims(spatial_dims)
        self.spatial_dims, self.in_channels = spatial_dims, in_channels
        self.min_size = 3 * 2**n_layers  # the last two 4-wide convs need >= 3 voxels
        self.net = PatchDiscriminator(
            spatial_dims=spatial_dims,
            channels=width,
            in_channels=in_channels,
            out_channels=1,
            num_layers_d=n_layers,
            norm="INSTANCE",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.spatial_dims, self.in_channels, "PatchGANDiscriminator")
        if min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"PatchGANDiscriminator expects spatial sizes >= {self.min_size} "
                f"(3 * 2 ** n_layers), got {tuple(x.shape[2:])}"
            )
        return self.net(x)[-1]


def build_networks(config) -> dict[str, nn.Module]:
    """The four CycleGAN networks of a :class:`~flare_uda.translation.config.CycleGANConfig`.

    Returns
    -------
    dict
        ``G_t`` (source -> target), ``G_s`` (target -> source), ``D_t``, ``D_s``.
    """

    def gen() -> ResnetGenerator:
        return ResnetGenerator(
            config.spatial_dims,
            1,
            1,
            config.width,
            config.n_blocks,
            config.n_downsampling,
            residual=config.residual,
        )

    def disc() -> PatchGANDiscriminator:
        return PatchGANDiscriminator(config.spatial_dims, 1, config.width, config.disc_layers)

    return {"G_t": gen(), "G_s": gen(), "D_t": disc(), "D_s": disc()}
