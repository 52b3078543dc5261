"""diffusers AutoencoderKL encoder / decoder with diffusers key names.

AutoencoderKLEncoder.forward(x [N,3,H,W] in [-1,1]) -> (mean, std) of the latent distribution
(quant_conv applied, logvar clamped to [-30, 20], std = exp(0.5 logvar); no scaling factor).
AutoencoderKLDecoder.forward(z [N,4,h,w]) -> [N,3,H,W] (post_quant_conv applied; no scaling).
"""

from typing import Tuple

import torch
import torch.nn as nn

from .. import ConvertError
from .common import attention_core
from .unet3d import Downsample2D, ResnetBlock2D, Upsample2D


class VAEAttention(nn.Module):
    """UNetMidBlock2D attention: group_norm, single head over all pixels, residual, softmax in fp32."""

    def __init__(self, channels, heads, groups, eps, attn_kind, dd=None):
        super().__init__()
        dd = dd or {}
        self.heads = heads
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps, affine=True, **dd)
        self.to_q = nn.Linear(channels, channels, bias=True, **dd)
        self.to_k = nn.Linear(channels, channels, bias=True, **dd)
        self.to_v = nn.Linear(channels, channels, bias=True, **dd)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels, bias=True, **dd), nn.Dropout(0.0)])
        self.core = attention_core(attn_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        d = c // self.heads
        q = self.to_q(t).reshape(b, h * w, self.heads, d).transpose(1, 2)
        k = self.to_k(t).reshape(b, h * w, self.heads, d).transpose(1, 2)
        v = self.to_v(t).reshape(b, h * w, self.heads, d).transpose(1, 2)
        out = self.core(q, k, v, False, True)
        out = out.transpose(1, 2).reshape(b, h * w, c)
        for layer in self.to_out:
            out = layer(out)
        out = out.transpose(1, 2).reshape(b, c, h, w)
        return out + residual


class UNetMidBlock2D(nn.Module):
    def __init__(self, channels, eps, act, groups, attn_kind, add_attention=True, dd=None):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, None, eps, groups, act, dd=dd),
                                      ResnetBlock2D(channels, channels, None, eps, groups, act, dd=dd)])
        if add_attention:
            self.attentions = nn.ModuleList([VAEAttention(channels, 1, groups, eps, attn_kind, dd=dd)])
        else:
            self.attentions = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i = 0
        for resnet in self.resnets:
            if i == 1:
                if self.attentions is not None:
                    for attn in self.attentions:
                        x = attn(x)
            x = resnet(x, None)
            i += 1
        return x


class DownEncoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, eps, act, groups, add_downsample, dd=None):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, eps, groups, act, dd=dd)
                                      for i in range(layers)])
        if add_downsample:
            self.downsamplers = nn.ModuleList([Downsample2D(cout, 0, dd=dd)])
        else:
            self.downsamplers = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x, None)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                x = down(x)
        return x


class UpDecoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, eps, act, groups, add_upsample, dd=None):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, eps, groups, act, dd=dd)
                                      for i in range(layers)])
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(cout, dd=dd)])
        else:
            self.upsamplers = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x, None)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                x = up(x, None)
        return x


def _vae_cfg(cfg):
    cfg = dict(cfg)
    boc = [int(c) for c in cfg.get("block_out_channels", [64])]
    down = list(cfg.get("down_block_types", ["DownEncoderBlock2D"]))
    up = list(cfg.get("up_block_types", ["UpDecoderBlock2D"]))
    if len(down) != len(boc) or len(up) != len(boc):
        raise ConvertError("vae config: block types and block_out_channels lengths differ")
    for t in down:
        if t != "DownEncoderBlock2D":
            raise ConvertError(f"vae config: unsupported down block type {t!r}")
    for t in up:
        if t != "UpDecoderBlock2D":
            raise ConvertError(f"vae config: unsupported up block type {t!r}")
    if cfg.get("norm_type", "group") not in (None, "group"):
        raise ConvertError("vae config: only norm_type 'group' is supported")
    return dict(
        boc=boc,
        layers=int(cfg.get("layers_per_block", 1)),
        act=cfg.get("act_fn", "silu"),
        groups=int(cfg.get("norm_num_groups", 32)),
        in_ch=int(cfg.get("in_channels", 3)),
        out_ch=int(cfg.get("out_channels", 3)),
        latent=int(cfg.get("latent_channels", 4)),
        mid_attn=bool(cfg.get("mid_block_add_attention", True)),
        use_quant_conv=bool(cfg.get("use_quant_conv", True)),
        use_post_quant_conv=bool(cfg.get("use_post_quant_conv", True)),
    )


class Encoder(nn.Module):
    def __init__(self, c, attn_kind, dd=None):
        super().__init__()
        dd = dd or {}
        boc = c["boc"]
        self.conv_in = nn.Conv2d(c["in_ch"], boc[0], 3, padding=1, **dd)
        self.down_blocks = nn.ModuleList()
        out_c = boc[0]
        for i in range(len(boc)):
            in_c = out_c
            out_c = boc[i]
            self.down_blocks.append(DownEncoderBlock2D(in_c, out_c, c["layers"], 1e-6, c["act"], c["groups"],
                                                       i != len(boc) - 1, dd=dd))
        self.mid_block = UNetMidBlock2D(boc[-1], 1e-6, c["act"], c["groups"], attn_kind, c["mid_attn"], dd=dd)
        self.conv_norm_out = nn.GroupNorm(c["groups"], boc[-1], eps=1e-6, **dd)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[-1], 2 * c["latent"], 3, padding=1, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        x = self.conv_act(self.conv_norm_out(x))
        return self.conv_out(x)


class Decoder(nn.Module):
    def __init__(self, c, attn_kind, dd=None):
        super().__init__()
        dd = dd or {}
        boc = c["boc"]
        self.conv_in = nn.Conv2d(c["latent"], boc[-1], 3, padding=1, **dd)
        self.mid_block = UNetMidBlock2D(boc[-1], 1e-6, c["act"], c["groups"], attn_kind, c["mid_attn"], dd=dd)
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        out_c = rev[0]
        for i in range(len(rev)):
            prev = out_c
            out_c = rev[i]
            self.up_blocks.append(UpDecoderBlock2D(prev, out_c, c["layers"] + 1, 1e-6, c["act"], c["groups"],
                                                   i != len(rev) - 1, dd=dd))
        self.conv_norm_out = nn.GroupNorm(c["groups"], boc[0], eps=1e-6, **dd)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], c["out_ch"], 3, padding=1, **dd)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(z)
        x = self.mid_block(x)
        for block in self.up_blocks:
            x = block(x)
        x = self.conv_act(self.conv_norm_out(x))
        return self.conv_out(x)


class AutoencoderKLEncoder(nn.Module):
    """Keys: encoder.*, quant_conv.* (as in the full AutoencoderKL state_dict)."""

    def __init__(self, config, attn_kind="plain", dd=None):
        super().__init__()
        c = _vae_cfg(config)
        self.encoder = Encoder(c, attn_kind, dd=dd)
        if c["use_quant_conv"]:
            self.quant_conv = nn.Conv2d(2 * c["latent"], 2 * c["latent"], 1, **(dd or {}))
        else:
            self.quant_conv = None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        in_dtype = x.dtype
        h = self.encoder(x.to(self.encoder.conv_in.weight.dtype))
        if self.quant_conv is not None:
            h = self.quant_conv(h)
        mean, logvar = torch.chunk(h, 2, dim=1)
        logvar = torch.clamp(logvar, -30.0, 20.0)
        std = torch.exp(0.5 * logvar)
        if x.is_floating_point():
            mean = mean.to(in_dtype)
            std = std.to(in_dtype)
        return mean, std


class AutoencoderKLDecoder(nn.Module):
    """Keys: post_quant_conv.*, decoder.*."""

    def __init__(self, config, attn_kind="plain", dd=None):
        super().__init__()
        c = _vae_cfg(config)
        if c["use_post_quant_conv"]:
            self.post_quant_conv = nn.Conv2d(c["latent"], c["latent"], 1, **(dd or {}))
        else:
            self.post_quant_conv = None
        self.decoder = Decoder(c, attn_kind, dd=dd)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        in_dtype = z.dtype
        is_float = z.is_floating_point()
        z = z.to(self.decoder.conv_in.weight.dtype)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        out = self.decoder(z)
        if is_float:
            out = out.to(in_dtype)
        return out
