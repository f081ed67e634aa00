//! The modules after a backbone, applied in Rust to its output: pooling → (Dense | LayerNorm |
//! Normalize)*. A modular CrossEncoder's chain ends in one logit; an embedder's in its vector.
//! Weights come from each module's safetensors; shapes are checked when the model loads.

use crate::error::{EngineError, Result};

/// sentence-transformers' pooling modes (weightedmean is not supported). Several modes
/// concatenate their vectors in the order the config lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first pooled token's vector ([CLS]).
    Cls,
    /// Mean over the tokens the attention mask keeps.
    Mean,
    /// Elementwise max over the kept tokens.
    Max,
    /// Sum over the kept tokens divided by the square root of their count.
    MeanSqrtLen,
    /// The last kept token's vector (decoder-style embedders).
    LastToken,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len_tokens",
            Pooling::LastToken => "lasttoken",
        }
    }

    /// A mode as sentence-transformers 6 names it (`pooling_mode`).
    pub fn from_name(name: &str) -> Option<Pooling> {
        Some(match name {
            "cls" => Pooling::Cls,
            "mean" => Pooling::Mean,
            "max" => Pooling::Max,
            "mean_sqrt_len_tokens" => Pooling::MeanSqrtLen,
            "lasttoken" => Pooling::LastToken,
            _ => return None,
        })
    }
}

/// Elementwise activations sentence-transformers configs name (by torch class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Sigmoid,
    Tanh,
    /// Exact GELU (erf form), torch.nn.GELU's default.
    Gelu,
    Relu,
}

impl Activation {
    /// Parse a torch class path such as `torch.nn.modules.activation.GELU`.
    pub fn from_torch_name(name: &str) -> Option<Activation> {
        let last = name.rsplit('.').next().unwrap_or(name);
        Some(match last {
            "Identity" => Activation::Identity,
            "Sigmoid" => Activation::Sigmoid,
            "Tanh" => Activation::Tanh,
            "GELU" => Activation::Gelu,
            "ReLU" => Activation::Relu,
            _ => return None,
        })
    }

    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::Relu => x.max(0.0),
        }
    }
}

#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A dense layer `y = act(W x + b)`, W stored row-major as [out, in] like torch.nn.Linear.
#[derive(Debug, Clone)]
pub struct Dense {
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub activation: Activation,
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

#[derive(Debug, Clone)]
pub enum Layer {
    Dense(Dense),
    LayerNorm(LayerNorm),
    /// L2 normalization (torch.nn.functional.normalize: divides by max(norm, 1e-12)).
    Normalize,
}

impl Layer {
    /// Input and output width; None for Normalize, which keeps any width.
    fn dims(&self) -> Option<(usize, usize)> {
        match self {
            Layer::Dense(d) => Some((d.in_features, d.out_features)),
            Layer::LayerNorm(n) => Some((n.weight.len(), n.weight.len())),
            Layer::Normalize => None,
        }
    }

    fn forward(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match self {
            Layer::Dense(d) => {
                for o in 0..d.out_features {
                    let row = &d.weight[o * d.in_features..(o + 1) * d.in_features];
                    // f64 accumulation keeps the head's rounding error far below the 1e-3 σ budget.
                    let mut acc: f64 = row
                        .iter()
                        .zip(x)
                        .map(|(w, v)| (*w as f64) * (*v as f64))
                        .sum();
                    if let Some(b) = &d.bias {
                        acc += b[o] as f64;
                    }
                    out.push(d.activation.apply(acc as f32));
                }
            }
            Layer::LayerNorm(n) => {
                let len = x.len() as f64;
                let mean = x.iter().map(|v| *v as f64).sum::<f64>() / len;
                let var = x.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / len;
                let inv = 1.0 / (var + n.eps as f64).sqrt();
                for i in 0..x.len() {
                    out.push((((x[i] as f64 - mean) * inv) as f32) * n.weight[i] + n.bias[i]);
                }
            }
            Layer::Normalize => {
                let norm = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                let norm = norm.max(1e-12);
                out.extend(x.iter().map(|v| (*v as f64 / norm) as f32));
            }
        }
    }
}

/// Pooling plus the chain of layers that turns a backbone's hidden states into a logit or an
/// embedding.
#[derive(Debug, Clone)]
pub struct Head {
    pub pooling: Vec<Pooling>,
    /// sentence-transformers' `include_prompt`: false leaves the prompt's tokens out of pooling.
    pub include_prompt: bool,
    pub hidden_size: usize,
    pub layers: Vec<Layer>,
}

impl Head {
    /// Check that the layers chain from the pooled width; returns the width of the output.
    pub fn validate(&self) -> Result<usize> {
        let mut dim = self.pooling.len() * self.hidden_size;
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some((input, output)) = layer.dims() {
                if input != dim {
                    return Err(EngineError::external(format!(
                        "module layer {} expects {input} inputs but receives {dim}",
                        i + 1
                    )));
                }
                dim = output;
            }
        }
        Ok(dim)
    }

    /// True when the chain ends in an L2 normalization (an embedder's usual last module).
    pub fn normalizes(&self) -> bool {
        matches!(self.layers.last(), Some(Layer::Normalize))
    }

    /// True for pooling by the first token alone (the CLS-only backbone serves it).
    pub fn pools_cls_only(&self) -> bool {
        self.pooling == [Pooling::Cls] && self.include_prompt
    }

    /// Pool one sequence of hidden states (row-major [seq, hidden]) under `mask`, as
    /// sentence-transformers' Pooling does for right-padded batches: when the prompt is not
    /// included, its first `prompt_tokens` positions are masked out first.
    pub fn pool(&self, hidden: &[f32], mask: &[i64], prompt_tokens: usize, out: &mut Vec<f32>) {
        let h = self.hidden_size;
        let skip = if self.include_prompt {
            0
        } else {
            prompt_tokens
        };
        let kept = |t: usize| t >= skip && mask[t] != 0;
        let row = |t: usize| &hidden[t * h..(t + 1) * h];
        let count = (0..mask.len()).filter(|t| kept(*t)).count() as f64;
        out.clear();
        for mode in &self.pooling {
            match mode {
                Pooling::Cls => {
                    // torch's argmax of the mask: the first kept token, else position 0.
                    let first = (0..mask.len()).find(|t| kept(*t)).unwrap_or(0);
                    out.extend_from_slice(row(first));
                }
                Pooling::LastToken => match (0..mask.len()).rev().find(|t| kept(*t)) {
                    Some(last) => out.extend_from_slice(row(last)),
                    // No kept token: sentence-transformers multiplies by the mask, giving zeros.
                    None => out.extend(std::iter::repeat_n(0.0, h)),
                },
                Pooling::Max => {
                    let mut max = vec![f32::NEG_INFINITY; h];
                    for t in (0..mask.len()).filter(|t| kept(*t)) {
                        max.iter_mut().zip(row(t)).for_each(|(m, v)| *m = m.max(*v));
                    }
                    out.extend(max);
                }
                Pooling::Mean | Pooling::MeanSqrtLen => {
                    let mut sum = vec![0f64; h];
                    for t in (0..mask.len()).filter(|t| kept(*t)) {
                        sum.iter_mut()
                            .zip(row(t))
                            .for_each(|(s, v)| *s += *v as f64);
                    }
                    // sentence-transformers clamps the token count at 1e-9 (no division by zero).
                    let count = count.max(1e-9);
                    let denominator = if *mode == Pooling::Mean {
                        count
                    } else {
                        count.sqrt()
                    };
                    out.extend(sum.iter().map(|s| (s / denominator) as f32));
                }
            }
        }
    }

    /// The chain's output for one pooled vector.
    pub fn forward_vec(&self, pooled: &[f32]) -> Vec<f32> {
        let mut a = pooled.to_vec();
        let mut b = Vec::with_capacity(a.len());
        for layer in &self.layers {
            layer.forward(&a, &mut b);
            std::mem::swap(&mut a, &mut b);
        }
        a
    }

    /// The logit for one pooled vector (a reranker's chain ends in one output).
    pub fn forward(&self, pooled: &[f32]) -> f32 {
        self.forward_vec(pooled)[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_torch_reference_values() {
        // torch.nn.functional.gelu(torch.tensor([-3., -1., 0., 0.5, 2.]))
        let expected = [-0.0040496, -0.1586553, 0.0, 0.3457312, 1.9544997];
        for (x, e) in [-3.0f32, -1.0, 0.0, 0.5, 2.0].iter().zip(expected) {
            assert!((Activation::Gelu.apply(*x) - e).abs() < 1e-6, "gelu({x})");
        }
    }

    #[test]
    fn head_chain_computes_dense_layernorm_dense() {
        let head = Head {
            pooling: vec![Pooling::Cls],
            include_prompt: true,
            hidden_size: 2,
            layers: vec![
                Layer::Dense(Dense {
                    in_features: 2,
                    out_features: 2,
                    weight: vec![1.0, 0.0, 0.0, 2.0],
                    bias: None,
                    activation: Activation::Identity,
                }),
                Layer::LayerNorm(LayerNorm {
                    weight: vec![1.0, 1.0],
                    bias: vec![0.0, 0.0],
                    eps: 0.0,
                }),
                Layer::Dense(Dense {
                    in_features: 2,
                    out_features: 1,
                    weight: vec![3.0, 1.0],
                    bias: Some(vec![0.5]),
                    activation: Activation::Identity,
                }),
            ],
        };
        assert_eq!(head.validate().unwrap(), 1);
        // [1, 1] -> [1, 2] -> normalised [-1, 1] -> 3*-1 + 1 + 0.5
        assert!((head.forward(&[1.0, 1.0]) - (-1.5)).abs() < 1e-6);
    }

    #[test]
    fn head_with_mismatched_shapes_is_rejected() {
        let head = Head {
            pooling: vec![Pooling::Cls],
            include_prompt: true,
            hidden_size: 3,
            layers: vec![Layer::Dense(Dense {
                in_features: 2,
                out_features: 1,
                weight: vec![1.0, 1.0],
                bias: None,
                activation: Activation::Identity,
            })],
        };
        let err = head.validate().unwrap_err();
        assert!(
            err.message.contains("expects 2 inputs but receives 3"),
            "{err}"
        );
    }

    #[test]
    fn mean_pooling_ignores_masked_tokens() {
        let head = Head {
            pooling: vec![Pooling::Mean],
            include_prompt: true,
            hidden_size: 2,
            layers: vec![],
        };
        let mut out = Vec::new();
        head.pool(&[1.0, 2.0, 3.0, 4.0, 100.0, 100.0], &[1, 1, 0], 0, &mut out);
        assert_eq!(out, vec![2.0, 3.0]);
    }

    #[test]
    fn every_pooling_mode_concatenates_in_config_order_and_skips_the_prompt() {
        let states = [1.0, -1.0, 3.0, 5.0, 2.0, 0.0, 100.0, 100.0];
        let head = |pooling: Vec<Pooling>, include_prompt| Head {
            pooling,
            include_prompt,
            hidden_size: 2,
            layers: vec![],
        };
        let mut out = Vec::new();
        let all = vec![
            Pooling::Cls,
            Pooling::Max,
            Pooling::Mean,
            Pooling::MeanSqrtLen,
            Pooling::LastToken,
        ];
        head(all.clone(), true).pool(&states, &[1, 1, 1, 0], 1, &mut out);
        let close = |got: &[f32], want: &[f32]| {
            assert_eq!(got.len(), want.len());
            assert!(
                got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
                "{got:?} vs {want:?}"
            );
        };
        let s3 = 3f32.sqrt();
        close(
            &out,
            &[
                1.0,
                -1.0,
                3.0,
                5.0,
                2.0,
                4.0 / 3.0,
                6.0 / s3,
                4.0 / s3,
                2.0,
                0.0,
            ],
        );
        // include_prompt false: the first (prompt) token leaves every mode.
        head(all, false).pool(&states, &[1, 1, 1, 0], 1, &mut out);
        let s2 = 2f32.sqrt();
        close(
            &out,
            &[3.0, 5.0, 3.0, 5.0, 2.5, 2.5, 5.0 / s2, 5.0 / s2, 2.0, 0.0],
        );
    }

    #[test]
    fn normalize_divides_by_the_l2_norm() {
        let head = Head {
            pooling: vec![Pooling::Cls],
            include_prompt: true,
            hidden_size: 2,
            layers: vec![Layer::Normalize],
        };
        assert_eq!(head.validate().unwrap(), 2);
        assert!(head.normalizes());
        assert_eq!(head.forward_vec(&[3.0, 4.0]), vec![0.6, 0.8]);
        assert_eq!(head.forward_vec(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
