"""Reference trajectories for the three scheduler variants the shared diffusers fixtures lack:
EulerDiscreteScheduler interpolation_type="log_linear" and DDPMScheduler variance_type="learned_range"
(and "learned").

diffusers is not installable where these were made, so this is a line-for-line transcription of
diffusers 0.27.2's code for exactly these paths (scheduling_euler_discrete.py set_timesteps /
scale_model_input / step; scheduling_ddpm.py set_timesteps / step / _get_variance), run with real
torch + numpy so every rounding is theirs, not ours. Same x_raw, stand-in model, noise seed and layout
as ../../tests/fixtures/reference/schedulers (index.json). Regenerate with real diffusers where it is
installed by swapping the transcribed classes for diffusers' own: the tests read only the JSON.

    /usr/bin/python3 tools/reference/scheduler_variants.py > tests/fixtures/reference/schedulers-transcribed/variants.json
"""
import json
import sys

import numpy as np
import torch

N = 1000
# base_scheduler_config.json: scaled_linear 0.00085..0.012, steps_offset 1, clip_sample false
betas = torch.linspace(0.00085**0.5, 0.012**0.5, N, dtype=torch.float32) ** 2
alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
x_raw = torch.randn([3, 4, 2, 3], generator=torch.Generator("cpu").manual_seed(0))


def model(x_in, t, learned):
    eps = 0.3 * torch.tanh(x_in) + (0.01 * float(t) / 1000.0)
    if not learned:
        return eps
    # the predicted variance channels: learned_range reads them as a fraction in [-1, 1], learned as the
    # variance itself (positive)
    v = 0.9 * torch.tanh(2.0 * x_in + 0.1)
    return torch.cat([eps, v if learned == "range" else 0.01 * (v + 1.0)], dim=1)


class EulerLogLinear:
    """EulerDiscreteScheduler(timestep_spacing="linspace", interpolation_type="log_linear")."""

    def set_timesteps(self, n):
        timesteps = np.linspace(0, N - 1, n, dtype=np.float32)[::-1].copy()
        sigmas = np.array(((1 - alphas_cumprod) / alphas_cumprod) ** 0.5)
        sigmas = torch.linspace(np.log(sigmas[-1]), np.log(sigmas[0]), n + 1).exp().numpy()
        sigmas = torch.from_numpy(sigmas).to(dtype=torch.float32)
        self.timesteps = torch.from_numpy(timesteps.astype(np.float32))
        self.sigmas = torch.cat([sigmas, torch.zeros(1)])
        self.init_noise_sigma = float(self.sigmas.max())
        self.i = 0

    def scale_model_input(self, x, t):
        sigma = self.sigmas[self.i]
        return x / ((sigma**2 + 1) ** 0.5)

    def step(self, mo, t, x, gen):
        sigma = self.sigmas[self.i]
        sigma_hat = sigma * (0 + 1)
        pred_x0 = x - sigma_hat * mo
        derivative = (x - pred_x0) / sigma_hat
        dt = self.sigmas[self.i + 1] - sigma_hat
        self.i += 1
        return x + derivative * dt, None


class DDPMLearned:
    """DDPMScheduler(timestep_spacing="leading", steps_offset=1, clip_sample=False, variance_type=...)."""

    def __init__(self, variance_type):
        self.variance_type = variance_type
        self.one = torch.tensor(1.0)

    def set_timesteps(self, n):
        self.n = n
        step_ratio = N // n
        timesteps = (np.arange(0, n) * step_ratio).round()[::-1].copy().astype(np.int64) + 1
        self.timesteps = torch.from_numpy(timesteps)
        self.init_noise_sigma = 1.0

    def scale_model_input(self, x, t):
        return x

    def _get_variance(self, t, predicted_variance):
        prev_t = t - N // self.n
        alpha_prod_t = alphas_cumprod[t]
        alpha_prod_t_prev = alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
        variance = torch.clamp(variance, min=1e-20)
        if self.variance_type == "learned":
            return predicted_variance
        min_log = torch.log(variance)
        max_log = torch.log(current_beta_t)
        frac = (predicted_variance + 1) / 2
        return frac * max_log + (1 - frac) * min_log

    def step(self, model_output, t, sample, gen):
        prev_t = t - N // self.n
        model_output, predicted_variance = torch.split(model_output, sample.shape[1], dim=1)
        alpha_prod_t = alphas_cumprod[t]
        alpha_prod_t_prev = alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t
        pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
        pred_original_sample_coeff = (alpha_prod_t_prev ** (0.5) * current_beta_t) / beta_prod_t
        current_sample_coeff = current_alpha_t ** (0.5) * beta_prod_t_prev / beta_prod_t
        pred_prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample
        noise = None
        if t > 0:
            noise = torch.randn(model_output.shape, generator=gen, dtype=model_output.dtype)
            variance = self._get_variance(t, predicted_variance=predicted_variance)
            if self.variance_type == "learned_range":
                variance = torch.exp(0.5 * variance) * noise
            else:
                variance = (variance**0.5) * noise
            pred_prev_sample = pred_prev_sample + variance
        return pred_prev_sample, noise


def run(sched, n, learned):
    sched.set_timesteps(n)
    gen = torch.Generator("cpu").manual_seed(1234)
    x = x_raw * sched.init_noise_sigma
    out = {"timesteps": [float(t) for t in sched.timesteps], "init_noise_sigma": sched.init_noise_sigma,
           "latents_init": x.flatten().tolist(), "steps": []}
    if hasattr(sched, "sigmas"):
        out["sigmas"] = [float(s) for s in sched.sigmas]
    for t in sched.timesteps:
        t = t.item()
        x_in = sched.scale_model_input(x, t)
        mo = model(x_in, t, learned)
        x, noise = sched.step(mo, t, x, gen)
        out["steps"].append({"t": t, "model_output": mo.flatten().tolist(), "model_output_shape": list(mo.shape),
                             "noise": None if noise is None else noise.flatten().tolist(), "prev_sample": x.flatten().tolist()})
    return out


variants = {
    "euler_log_linear": {"class": "EulerDiscreteScheduler", "overrides": {"interpolation_type": "log_linear"},
                         "runs": {n: run(EulerLogLinear(), n, False) for n in (5, 8)}},
    "ddpm_learned_range": {"class": "DDPMScheduler", "overrides": {"variance_type": "learned_range"},
                           "runs": {n: run(DDPMLearned("learned_range"), n, "range") for n in (4, 7)}},
    "ddpm_learned": {"class": "DDPMScheduler", "overrides": {"variance_type": "learned"},
                     "runs": {n: run(DDPMLearned("learned"), n, "variance") for n in (5,)}},
}
json.dump({"made_by": "tools/reference/scheduler_variants.py (transcription of diffusers 0.27.2, torch " + torch.__version__ + ", numpy " + np.__version__ + ")",
           "latents_shape": list(x_raw.shape), "variants": variants}, sys.stdout)
