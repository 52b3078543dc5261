"""UNet3DConditionModel (diffusers 0.27 semantics) as scriptable modules with diffusers key names.

Config quirk (diffusers issue #2011), reproduced exactly as diffusers' code path does it:
UNet3DConditionModel renames the config's ``attention_head_dim`` to ``num_attention_heads`` and
hands it to the blocks, which build ``Transformer2DModel(out_channels // n, n)`` /
``TransformerTemporalModel(out_channels // n, n)`` -- positional arguments
(num_attention_heads, attention_head_dim).  Net effect: each spatial / temporal transformer of a
block with C channels has C // attention_head_dim heads of attention_head_dim channels
(ms-1.7b: 5/10/20 heads of 64).  ``transformer_in`` uses 8 heads of attention_head_dim channels.
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ConvertError
from .common import activation, attention_core


class Attention(nn.Module):
    """diffusers Attention as used by BasicTransformerBlock: to_q/to_k/to_v (no bias), to_out.0."""

    def __init__(self, query_dim, heads, dim_head, cross_attention_dim, attn_kind, bias=False, dd=None):
        super().__init__()
        dd = dd or {}
        inner = heads * dim_head
        kv_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=bias, **dd)
        self.to_k = nn.Linear(kv_dim, inner, bias=bias, **dd)
        self.to_v = nn.Linear(kv_dim, inner, bias=bias, **dd)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=True, **dd), nn.Dropout(0.0)])
        self.core = attention_core(attn_kind)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b = x.size(0)
        n = x.size(1)
        m = context.size(1)
        q = self.to_q(x)
        k = self.to_k(context)
        v = self.to_v(context)
        d = q.size(-1) // self.heads
        q = q.reshape(b, n, self.heads, d).transpose(1, 2)
        k = k.reshape(b, m, self.heads, d).transpose(1, 2)
        v = v.reshape(b, m, self.heads, d).transpose(1, 2)
        out = self.core(q, k, v, False, False)
        out = out.transpose(1, 2).reshape(b, n, self.heads * d)
        for layer in self.to_out:
            out = layer(out)
        return out


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out, dd=None):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2, **(dd or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    """ff.net = [GEGLU(dim, 4*dim), Dropout, Linear(4*dim, dim)] (diffusers 'geglu')."""

    def __init__(self, dim, mult=4, dd=None):
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.ModuleList([GEGLU(dim, inner, dd=dd), nn.Dropout(0.0), nn.Linear(inner, dim, **(dd or {}))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    """norm1/attn1 (self), norm2/attn2 (cross, or a 2nd self-attention), norm3/ff.

    ``chunk_size`` (0 = off) / ``chunk_dim``: forward chunking of the feed-forward, a run-time
    setting (plain int attributes, settable after torch.jit.load).  Output is identical either
    way; a chunk size that does not divide the dimension just gives a smaller last chunk.
    """

    def __init__(self, dim, heads, dim_head, cross_attention_dim, double_self_attention, attn_kind, dd=None):
        super().__init__()
        dd = dd or {}
        self.norm1 = nn.LayerNorm(dim, eps=1e-5, **dd)
        self.attn1 = Attention(dim, heads, dim_head, None, attn_kind, dd=dd)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5, **dd)
        self.attn2 = Attention(dim, heads, dim_head, None if double_self_attention else cross_attention_dim,
                               attn_kind, dd=dd)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, **dd)
        self.ff = FeedForward(dim, dd=dd)
        self.chunk_size = 0
        self.chunk_dim = 1

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: Optional[torch.Tensor]) -> torch.Tensor:
        norm_h = self.norm1(hidden_states)
        hidden_states = self.attn1(norm_h, norm_h) + hidden_states
        norm_h = self.norm2(hidden_states)
        if encoder_hidden_states is None:
            context = norm_h
        else:
            context = encoder_hidden_states
        hidden_states = self.attn2(norm_h, context) + hidden_states
        norm_h = self.norm3(hidden_states)
        if self.chunk_size > 0:
            dim = self.chunk_dim
            if dim < 0:
                dim = dim + norm_h.dim()
            pieces: List[torch.Tensor] = []
            for piece in norm_h.split(self.chunk_size, dim):
                pieces.append(self.ff(piece))
            ff_out = torch.cat(pieces, dim)
        else:
            ff_out = self.ff(norm_h)
        return ff_out + hidden_states


class Transformer2DModel(nn.Module):
    """Spatial transformer (continuous input, linear projections), one or more blocks."""

    def __init__(self, heads, dim_head, in_channels, cross_attention_dim, norm_num_groups, attn_kind,
                 num_layers=1, dd=None):
        super().__init__()
        dd = dd or {}
        inner = heads * dim_head
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True, **dd)
        self.proj_in = nn.Linear(in_channels, inner, **dd)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner, heads, dim_head, cross_attention_dim, False, attn_kind, dd=dd)
            for _ in range(num_layers)])
        self.proj_out = nn.Linear(inner, in_channels, **dd)

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        b, c, h, w = hidden_states.shape
        residual = hidden_states
        x = self.norm(hidden_states)
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, encoder_hidden_states)
        x = self.proj_out(x)
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()
        return x + residual


class TransformerTemporalModel(nn.Module):
    """Attention across frames at every pixel (two self-attentions per block)."""

    def __init__(self, heads, dim_head, in_channels, norm_num_groups, attn_kind, num_layers=1, dd=None):
        super().__init__()
        dd = dd or {}
        inner = heads * dim_head
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True, **dd)
        self.proj_in = nn.Linear(in_channels, inner, **dd)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner, heads, dim_head, None, True, attn_kind, dd=dd)
            for _ in range(num_layers)])
        self.proj_out = nn.Linear(inner, in_channels, **dd)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        bf, c, h, w = hidden_states.shape
        b = bf // num_frames
        residual = hidden_states
        x = hidden_states.reshape(b, num_frames, c, h, w).permute(0, 2, 1, 3, 4)
        x = self.norm(x)
        x = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, num_frames, c)
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, None)
        x = self.proj_out(x)
        x = x.reshape(b, h, w, num_frames, c).permute(0, 3, 4, 1, 2).contiguous()
        x = x.reshape(bf, c, h, w)
        return x + residual


class ResnetBlock2D(nn.Module):
    """Pre-norm resnet; time embedding added after conv1 ('default' norm) when temb_channels set."""

    def __init__(self, in_channels, out_channels, temb_channels, eps, groups, act_fn, output_scale_factor=1.0,
                 dd=None):
        super().__init__()
        dd = dd or {}
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True, **dd)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, **dd)
        if temb_channels is not None:
            self.time_emb_proj = nn.Linear(temb_channels, out_channels, **dd)
        else:
            self.time_emb_proj = None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True, **dd)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, **dd)
        self.nonlinearity = activation(act_fn)
        if in_channels != out_channels:
            self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0, **dd)
        else:
            self.conv_shortcut = None
        self.output_scale_factor = float(output_scale_factor)

    def forward(self, x: torch.Tensor, temb: Optional[torch.Tensor]) -> torch.Tensor:
        h = self.nonlinearity(self.norm1(x))
        h = self.conv1(h)
        if self.time_emb_proj is not None:
            if temb is not None:
                t = self.time_emb_proj(self.nonlinearity(temb))
                h = h + t[:, :, None, None]
        h = self.nonlinearity(self.norm2(h))
        h = self.dropout(h)
        h = self.conv2(h)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        out = x + h
        if self.output_scale_factor != 1.0:
            out = out / self.output_scale_factor
        return out


class TemporalConvLayer(nn.Module):
    """Four (GroupNorm, SiLU, [Dropout], Conv3d (3,1,1)) stages over frames, plus identity."""

    def __init__(self, in_dim, out_dim, norm_num_groups, dd=None):
        super().__init__()
        dd = dd or {}
        self.conv1 = nn.Sequential(nn.GroupNorm(norm_num_groups, in_dim, **dd), nn.SiLU(),
                                   nn.Conv3d(in_dim, out_dim, (3, 1, 1), padding=(1, 0, 0), **dd))
        self.conv2 = nn.Sequential(nn.GroupNorm(norm_num_groups, out_dim, **dd), nn.SiLU(), nn.Dropout(0.0),
                                   nn.Conv3d(out_dim, in_dim, (3, 1, 1), padding=(1, 0, 0), **dd))
        self.conv3 = nn.Sequential(nn.GroupNorm(norm_num_groups, out_dim, **dd), nn.SiLU(), nn.Dropout(0.0),
                                   nn.Conv3d(out_dim, in_dim, (3, 1, 1), padding=(1, 0, 0), **dd))
        self.conv4 = nn.Sequential(nn.GroupNorm(norm_num_groups, out_dim, **dd), nn.SiLU(), nn.Dropout(0.0),
                                   nn.Conv3d(out_dim, in_dim, (3, 1, 1), padding=(1, 0, 0), **dd))

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        bf, c, h, w = hidden_states.shape
        x = hidden_states.reshape(bf // num_frames, num_frames, c, h, w).permute(0, 2, 1, 3, 4)
        identity = x
        x = self.conv1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = identity + x
        return x.permute(0, 2, 1, 3, 4).reshape(bf, x.size(1), h, w)


class Downsample2D(nn.Module):
    def __init__(self, channels, padding, dd=None):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding, **(dd or {}))
        self.pad_right_bottom = padding == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_right_bottom:
            x = F.pad(x, [0, 1, 0, 1], mode="constant", value=0.0)
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, channels, dd=None):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, **(dd or {}))

    def forward(self, x: torch.Tensor, output_size: Optional[List[int]]) -> torch.Tensor:
        dtype = x.dtype
        if dtype == torch.bfloat16:
            # nearest upsampling had no bfloat16 kernel before torch 2.1 (as diffusers does)
            x = x.to(torch.float32)
        if x.size(0) >= 64:
            x = x.contiguous()
        if output_size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=output_size, mode="nearest")
        if dtype == torch.bfloat16:
            x = x.to(dtype)
        return self.conv(x)


def _resnet_stack(in_channels, out_channels, temb_channels, eps, act_fn, groups, output_scale_factor=1.0, dd=None):
    """``resnets`` / ``temp_convs`` of a 3D block: a ResnetBlock2D (input channels ``in_channels[i]``)
    and the TemporalConvLayer after it, one pair per entry of ``in_channels``."""
    resnets = nn.ModuleList([ResnetBlock2D(cin, out_channels, temb_channels, eps, groups, act_fn, output_scale_factor,
                                           dd=dd) for cin in in_channels])
    temp_convs = nn.ModuleList([TemporalConvLayer(out_channels, out_channels, groups, dd=dd) for _ in in_channels])
    return resnets, temp_convs


def _transformer_stack(num_layers, channels, head_dim, cross_attention_dim, groups, attn_kind, dd=None):
    """``attentions`` / ``temp_attentions`` of a cross-attention 3D block: ``num_layers`` spatial and
    temporal transformers of ``channels // head_dim`` heads of ``head_dim`` (diffusers' argument swap,
    see the module docstring)."""
    heads = channels // head_dim
    attentions = nn.ModuleList([Transformer2DModel(heads, head_dim, channels, cross_attention_dim, groups, attn_kind,
                                                   dd=dd) for _ in range(num_layers)])
    temp_attentions = nn.ModuleList([TransformerTemporalModel(heads, head_dim, channels, groups, attn_kind, dd=dd)
                                     for _ in range(num_layers)])
    return attentions, temp_attentions


def _down_resnet_in_channels(in_channels, out_channels, num_layers):
    return [in_channels if i == 0 else out_channels for i in range(num_layers)]


def _up_resnet_in_channels(in_channels, prev_output_channel, out_channels, num_layers):
    """Input channels of an up block's resnets: previous output (first) or own output, plus the skip
    connection (the down block's input channels for the last one)."""
    return [(prev_output_channel if i == 0 else out_channels) + (in_channels if i == num_layers - 1 else out_channels)
            for i in range(num_layers)]


class CrossAttnDownBlock3D(nn.Module):
    def __init__(self, in_channels, out_channels, temb_channels, num_layers, eps, act_fn, groups, head_dim,
                 cross_attention_dim, downsample_padding, add_downsample, attn_kind, dd=None):
        super().__init__()
        self.resnets, self.temp_convs = _resnet_stack(
            _down_resnet_in_channels(in_channels, out_channels, num_layers), out_channels, temb_channels, eps, act_fn,
            groups, dd=dd)
        self.attentions, self.temp_attentions = _transformer_stack(num_layers, out_channels, head_dim,
                                                                   cross_attention_dim, groups, attn_kind, dd=dd)
        if add_downsample:
            self.downsamplers = nn.ModuleList([Downsample2D(out_channels, downsample_padding, dd=dd)])
        else:
            self.downsamplers = None

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor, encoder_hidden_states: torch.Tensor,
                num_frames: int) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        outputs: List[torch.Tensor] = []
        for resnet, temp_conv, attn, temp_attn in zip(self.resnets, self.temp_convs, self.attentions,
                                                      self.temp_attentions):
            hidden_states = resnet(hidden_states, temb)
            hidden_states = temp_conv(hidden_states, num_frames)
            hidden_states = attn(hidden_states, encoder_hidden_states)
            hidden_states = temp_attn(hidden_states, num_frames)
            outputs.append(hidden_states)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                hidden_states = down(hidden_states)
            outputs.append(hidden_states)
        return hidden_states, outputs


class DownBlock3D(nn.Module):
    def __init__(self, in_channels, out_channels, temb_channels, num_layers, eps, act_fn, groups,
                 downsample_padding, add_downsample, dd=None):
        super().__init__()
        self.resnets, self.temp_convs = _resnet_stack(
            _down_resnet_in_channels(in_channels, out_channels, num_layers), out_channels, temb_channels, eps, act_fn,
            groups, dd=dd)
        if add_downsample:
            self.downsamplers = nn.ModuleList([Downsample2D(out_channels, downsample_padding, dd=dd)])
        else:
            self.downsamplers = None

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor, encoder_hidden_states: torch.Tensor,
                num_frames: int) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        outputs: List[torch.Tensor] = []
        for resnet, temp_conv in zip(self.resnets, self.temp_convs):
            hidden_states = resnet(hidden_states, temb)
            hidden_states = temp_conv(hidden_states, num_frames)
            outputs.append(hidden_states)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                hidden_states = down(hidden_states)
            outputs.append(hidden_states)
        return hidden_states, outputs


class UNetMidBlock3DCrossAttn(nn.Module):
    def __init__(self, in_channels, temb_channels, eps, act_fn, groups, head_dim, cross_attention_dim,
                 output_scale_factor, attn_kind, num_layers=1, dd=None):
        super().__init__()
        self.resnets, self.temp_convs = _resnet_stack([in_channels] * (num_layers + 1), in_channels, temb_channels, eps,
                                                      act_fn, groups, output_scale_factor, dd=dd)
        self.attentions, self.temp_attentions = _transformer_stack(num_layers, in_channels, head_dim,
                                                                   cross_attention_dim, groups, attn_kind, dd=dd)

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor, encoder_hidden_states: torch.Tensor,
                num_frames: int) -> torch.Tensor:
        hidden_states = self.resnets[0](hidden_states, temb)
        hidden_states = self.temp_convs[0](hidden_states, num_frames)
        # (TorchScript cannot zip a sliced ModuleList: pick resnets[k + 1] by position instead)
        k = 0
        for attn, temp_attn in zip(self.attentions, self.temp_attentions):
            hidden_states = attn(hidden_states, encoder_hidden_states)
            hidden_states = temp_attn(hidden_states, num_frames)
            j = 0
            for resnet, temp_conv in zip(self.resnets, self.temp_convs):
                if j == k + 1:
                    hidden_states = resnet(hidden_states, temb)
                    hidden_states = temp_conv(hidden_states, num_frames)
                j += 1
            k += 1
        return hidden_states


class UpBlock3D(nn.Module):
    def __init__(self, in_channels, prev_output_channel, out_channels, temb_channels, num_layers, eps, act_fn,
                 groups, add_upsample, dd=None):
        super().__init__()
        self.resnets, self.temp_convs = _resnet_stack(
            _up_resnet_in_channels(in_channels, prev_output_channel, out_channels, num_layers), out_channels,
            temb_channels, eps, act_fn, groups, dd=dd)
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, dd=dd)])
        else:
            self.upsamplers = None
        self.num_layers = num_layers

    def forward(self, hidden_states: torch.Tensor, res_hidden_states: List[torch.Tensor], temb: torch.Tensor,
                encoder_hidden_states: torch.Tensor, upsample_size: Optional[List[int]],
                num_frames: int) -> torch.Tensor:
        for resnet, temp_conv in zip(self.resnets, self.temp_convs):
            res = res_hidden_states[-1]
            res_hidden_states = res_hidden_states[:-1]
            hidden_states = torch.cat([hidden_states, res], dim=1)
            hidden_states = resnet(hidden_states, temb)
            hidden_states = temp_conv(hidden_states, num_frames)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                hidden_states = up(hidden_states, upsample_size)
        return hidden_states


class CrossAttnUpBlock3D(nn.Module):
    def __init__(self, in_channels, prev_output_channel, out_channels, temb_channels, num_layers, eps, act_fn,
                 groups, head_dim, cross_attention_dim, add_upsample, attn_kind, dd=None):
        super().__init__()
        self.resnets, self.temp_convs = _resnet_stack(
            _up_resnet_in_channels(in_channels, prev_output_channel, out_channels, num_layers), out_channels,
            temb_channels, eps, act_fn, groups, dd=dd)
        self.attentions, self.temp_attentions = _transformer_stack(num_layers, out_channels, head_dim,
                                                                   cross_attention_dim, groups, attn_kind, dd=dd)
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, dd=dd)])
        else:
            self.upsamplers = None
        self.num_layers = num_layers

    def forward(self, hidden_states: torch.Tensor, res_hidden_states: List[torch.Tensor], temb: torch.Tensor,
                encoder_hidden_states: torch.Tensor, upsample_size: Optional[List[int]],
                num_frames: int) -> torch.Tensor:
        for resnet, temp_conv, attn, temp_attn in zip(self.resnets, self.temp_convs, self.attentions,
                                                      self.temp_attentions):
            res = res_hidden_states[-1]
            res_hidden_states = res_hidden_states[:-1]
            hidden_states = torch.cat([hidden_states, res], dim=1)
            hidden_states = resnet(hidden_states, temb)
            hidden_states = temp_conv(hidden_states, num_frames)
            hidden_states = attn(hidden_states, encoder_hidden_states)
            hidden_states = temp_attn(hidden_states, num_frames)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                hidden_states = up(hidden_states, upsample_size)
        return hidden_states


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels, time_embed_dim, act_fn, dd=None):
        super().__init__()
        dd = dd or {}
        self.linear_1 = nn.Linear(in_channels, time_embed_dim, **dd)
        self.act = activation(act_fn)
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class Timesteps(nn.Module):
    """Sinusoidal embedding (flip_sin_to_cos=True, downscale_freq_shift=0, max_period=10000)."""

    def __init__(self, num_channels):
        super().__init__()
        self.num_channels = num_channels
        self.neg_log_max_period = -math.log(10000.0)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        half = self.num_channels // 2
        exponent = self.neg_log_max_period * torch.arange(0, half, dtype=torch.float32, device=timesteps.device)
        exponent = exponent / float(half)
        freqs = torch.exp(exponent)
        emb = timesteps[:, None].float() * freqs[None, :]
        emb = torch.cat([torch.cos(emb), torch.sin(emb)], dim=-1)
        if self.num_channels % 2 == 1:
            emb = F.pad(emb, [0, 1, 0, 0])
        return emb


def _as_list(value, n, name):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConvertError(f"unet config: {name} has {len(value)} entries, expected {n}")
        return [int(v) for v in value]
    return [int(value)] * n


class UNet3DConditionModel(nn.Module):
    """forward(sample [B,C,F,h,w], timestep (0-dim or [B]), encoder_hidden_states [B,S,D]) -> [B,C,F,h,w]."""

    def __init__(self, config, attn_kind="plain", dd=None):
        super().__init__()
        cfg = dict(config)
        if cfg.get("num_attention_heads") is not None:
            raise ConvertError("unet config: num_attention_heads is not supported by UNet3DConditionModel "
                               "(diffusers raises too); use attention_head_dim")
        if cfg.get("time_cond_proj_dim") is not None:
            raise ConvertError("unet config: time_cond_proj_dim is not supported")
        down_types = list(cfg.get("down_block_types", ["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"]))
        up_types = list(cfg.get("up_block_types", ["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3))
        boc = [int(c) for c in cfg.get("block_out_channels", [320, 640, 1280, 1280])]
        if not (len(down_types) == len(up_types) == len(boc)):
            raise ConvertError("unet config: down_block_types, up_block_types and block_out_channels "
                               "must have the same length")
        layers = int(cfg.get("layers_per_block", 2))
        in_ch = int(cfg.get("in_channels", 4))
        out_ch = int(cfg.get("out_channels", 4))
        groups = cfg.get("norm_num_groups", 32)
        eps = float(cfg.get("norm_eps", 1e-5))
        act = cfg.get("act_fn", "silu")
        cross = int(cfg.get("cross_attention_dim", 1024))
        head_cfg = cfg.get("attention_head_dim", 64)
        heads = _as_list(head_cfg, len(down_types), "attention_head_dim")  # per-block head DIM (see top)
        if isinstance(head_cfg, (list, tuple)):
            raise ConvertError("unet config: a per-block attention_head_dim list is not supported "
                               "(transformer_in needs a single value)")
        pad = int(cfg.get("downsample_padding", 1))
        mid_scale = float(cfg.get("mid_block_scale_factor", 1.0))
        if groups is None:
            raise ConvertError("unet config: norm_num_groups null is not supported")
        groups = int(groups)
        dd = dd or {}
        for c in boc:
            if c % groups:
                raise ConvertError(f"unet config: block_out_channels {c} not divisible by norm_num_groups {groups}")

        temb_dim = boc[0] * 4
        self.conv_in = nn.Conv2d(in_ch, boc[0], 3, padding=1, **dd)
        self.time_proj = Timesteps(boc[0])
        self.time_embedding = TimestepEmbedding(boc[0], temb_dim, act, dd=dd)
        self.transformer_in = TransformerTemporalModel(8, int(head_cfg), boc[0], groups, attn_kind, dd=dd)

        self.down_blocks = nn.ModuleList()
        out_c = boc[0]
        for i, t in enumerate(down_types):
            in_c = out_c
            out_c = boc[i]
            final = i == len(boc) - 1
            if t == "CrossAttnDownBlock3D":
                blk = CrossAttnDownBlock3D(in_c, out_c, temb_dim, layers, eps, act, groups, heads[i], cross, pad,
                                           not final, attn_kind, dd=dd)
            elif t == "DownBlock3D":
                blk = DownBlock3D(in_c, out_c, temb_dim, layers, eps, act, groups, pad, not final, dd=dd)
            else:
                raise ConvertError(f"unet config: unsupported down block type {t!r}")
            self.down_blocks.append(blk)

        self.mid_block = UNetMidBlock3DCrossAttn(boc[-1], temb_dim, eps, act, groups, heads[-1], cross, mid_scale,
                                                 attn_kind, dd=dd)

        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        rev_heads = list(reversed(heads))
        out_c = rev[0]
        num_up = 0
        for i, t in enumerate(up_types):
            final = i == len(boc) - 1
            prev = out_c
            out_c = rev[i]
            in_c = rev[min(i + 1, len(boc) - 1)]
            if not final:
                num_up += 1
            if t == "CrossAttnUpBlock3D":
                blk = CrossAttnUpBlock3D(in_c, prev, out_c, temb_dim, layers + 1, eps, act, groups, rev_heads[i],
                                         cross, not final, attn_kind, dd=dd)
            elif t == "UpBlock3D":
                blk = UpBlock3D(in_c, prev, out_c, temb_dim, layers + 1, eps, act, groups, not final, dd=dd)
            else:
                raise ConvertError(f"unet config: unsupported up block type {t!r}")
            self.up_blocks.append(blk)
        self.num_upsamplers = num_up
        self.conv_norm_out = nn.GroupNorm(groups, boc[0], eps=eps, **dd)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], out_ch, 3, padding=1, **dd)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        if sample.dim() != 5:
            raise RuntimeError("unet: sample must be [batch, channels, frames, height, width]")
        dtype = self.conv_in.weight.dtype
        in_dtype = sample.dtype
        batch = sample.size(0)
        num_frames = sample.size(2)
        height = sample.size(3)
        width = sample.size(4)
        up_factor = 2 ** self.num_upsamplers
        forward_upsample_size = (height % up_factor != 0) or (width % up_factor != 0)

        timesteps = timestep.to(sample.device)
        if timesteps.dim() == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.reshape(-1).expand(batch)
        t_emb = self.time_proj(timesteps).to(dtype)
        emb = self.time_embedding(t_emb)
        emb = emb.repeat_interleave(num_frames, dim=0)
        ehs = encoder_hidden_states.to(dtype).repeat_interleave(num_frames, dim=0)

        x = sample.to(dtype).permute(0, 2, 1, 3, 4).reshape(batch * num_frames, sample.size(1), height, width)
        x = self.conv_in(x)
        x = self.transformer_in(x, num_frames)

        res_samples: List[torch.Tensor] = [x]
        for down in self.down_blocks:
            x, outs = down(x, emb, ehs, num_frames)
            res_samples.extend(outs)

        x = self.mid_block(x, emb, ehs, num_frames)

        i = 0
        n_up = len(self.up_blocks)
        for up in self.up_blocks:
            n = up.num_layers
            res = res_samples[len(res_samples) - n:]
            res_samples = res_samples[:len(res_samples) - n]
            upsample_size: Optional[List[int]] = None
            if i < n_up - 1 and forward_upsample_size:
                last = res_samples[-1]
                upsample_size = [last.size(2), last.size(3)]
            x = up(x, res, emb, ehs, upsample_size, num_frames)
            i += 1

        x = self.conv_act(self.conv_norm_out(x))
        x = self.conv_out(x)
        x = x.reshape(batch, num_frames, x.size(1), height, width).permute(0, 2, 1, 3, 4)
        if sample.is_floating_point():
            x = x.to(in_dtype)
        return x
