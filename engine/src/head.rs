//! The scoring head of modular sentence-transformers CrossEncoders, applied in Rust to the
//! backbone's output: pooling → (Dense | LayerNorm)* → one logit.
//! Weights come from each module's safetensors; shapes are checked when the model loads.

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token's vector ([CLS]).
    Cls,
    /// Mean over the tokens the attention mask keeps.
    Mean,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        }
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
}

impl Layer {
    fn input_dim(&self) -> usize {
        match self {
            Layer::Dense(d) => d.in_features,
            Layer::LayerNorm(n) => n.weight.len(),
        }
    }
    fn output_dim(&self) -> usize {
        match self {
            Layer::Dense(d) => d.out_features,
            Layer::LayerNorm(n) => n.weight.len(),
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
        }
    }
}

/// Pooling plus the chain of layers that turns a backbone's hidden states into one logit.
#[derive(Debug, Clone)]
pub struct Head {
    pub pooling: Pooling,
    pub hidden_size: usize,
    pub layers: Vec<Layer>,
}

impl Head {
    /// Check that the layers chain from `hidden_size` down to a single output.
    pub fn validate(&self) -> Result<()> {
        let mut dim = self.hidden_size;
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.input_dim() != dim {
                return Err(EngineError::external(format!(
                    "head layer {} expects {} inputs but receives {dim}",
                    i + 1,
                    layer.input_dim()
                )));
            }
            dim = layer.output_dim();
        }
        if dim != 1 {
            return Err(EngineError::unsupported(format!(
                "the scoring head ends with {dim} outputs; ettin scores with single-logit rerankers"
            )));
        }
        Ok(())
    }

    /// Pool one sequence of `seq_len` hidden states (row-major [seq, hidden]) under `mask`.
    pub fn pool(&self, hidden: &[f32], mask: &[i64], out: &mut Vec<f32>) {
        let h = self.hidden_size;
        out.clear();
        match self.pooling {
            Pooling::Cls => out.extend_from_slice(&hidden[..h]),
            Pooling::Mean => {
                let mut sum = vec![0f64; h];
                let mut count = 0f64;
                for (t, m) in mask.iter().enumerate() {
                    if *m != 0 {
                        count += 1.0;
                        for (s, v) in sum.iter_mut().zip(&hidden[t * h..(t + 1) * h]) {
                            *s += *v as f64;
                        }
                    }
                }
                // sentence-transformers clamps the token count at 1e-9 to avoid dividing by zero.
                let count = count.max(1e-9);
                out.extend(sum.iter().map(|s| (s / count) as f32));
            }
        }
    }

    /// The logit for one pooled vector.
    pub fn forward(&self, pooled: &[f32]) -> f32 {
        let mut a = pooled.to_vec();
        let mut b = Vec::with_capacity(a.len());
        for layer in &self.layers {
            layer.forward(&a, &mut b);
            std::mem::swap(&mut a, &mut b);
        }
        a[0]
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
            pooling: Pooling::Cls,
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
        head.validate().unwrap();
        // [1, 1] -> [1, 2] -> normalised [-1, 1] -> 3*-1 + 1 + 0.5
        assert!((head.forward(&[1.0, 1.0]) - (-1.5)).abs() < 1e-6);
    }

    #[test]
    fn head_with_mismatched_shapes_is_rejected() {
        let head = Head {
            pooling: Pooling::Cls,
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
            pooling: Pooling::Mean,
            hidden_size: 2,
            layers: vec![],
        };
        let mut out = Vec::new();
        head.pool(&[1.0, 2.0, 3.0, 4.0, 100.0, 100.0], &[1, 1, 0], &mut out);
        assert_eq!(out, vec![2.0, 3.0]);
    }
}
