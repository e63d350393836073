//! Layer specifications and static shape inference through a chain. Shapes are per
//! example: `[d]` for vectors, `[channels, height, width]` for images.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Tanh,
    Softplus,
    Sigmoid,
}

/// How a Farkas layer aggregates the other units into its appended one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    Sum,
    Mean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSpec {
    /// `input` is inferred when absent.
    Linear {
        input: Option<usize>,
        out: usize,
    },
    Conv2d {
        input: Option<usize>,
        out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    },
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    AvgPool {
        kernel: usize,
        stride: usize,
    },
    /// Mean over the spatial positions: `[c, h, w]` -> `[c]`.
    GlobalAvgPool,
    Flatten,
    Dropout {
        p: f64,
    },
    /// Batch statistics in training, running statistics (momentum 0.1) in evaluation.
    BatchNorm,
    /// `(x - mean) / std` per channel, so that attacks and data stay in [0, 1].
    Normalize {
        mean: Vec<f64>,
        std: Vec<f64>,
    },
    Act(Activation),
    /// `x + body(x)`; with `farkas`, `body` maps to one channel less and the last channel
    /// is built from `x + body(x)` (Pooladian et al., the residual Farkas block).
    Residual {
        body: Vec<LayerSpec>,
        farkas: Option<Aggregate>,
    },
    /// Dense layer whose last unit is minus the aggregate of the others' pre-activations.
    FarkasLinear {
        input: Option<usize>,
        out: usize,
        agg: Aggregate,
    },
    /// y(t1) of dy/dt = field(y) from y(0) = input (a neural ODE block); the solve is
    /// differentiated through its operations.
    NeuralOde {
        field: Vec<LayerSpec>,
        t1: f64,
        method: crate::ode::Method,
        step: Option<f64>,
        rtol: f64,
        atol: f64,
        max_steps: usize,
        #[serde(default)]
        first_step: Option<f64>,
        #[serde(default)]
        min_step: f64,
        #[serde(default)]
        max_step: Option<f64>,
        /// Gradients by the adjoint method instead (constant memory).
        #[serde(default)]
        adjoint: bool,
    },
    /// FFJORD's time-dependent dense layers, only inside a CNF's field (`flow::TimeNet`):
    /// (W x + b) sigmoid(w_g t + b_g) + w_b t, and W x + b + w_t t.
    ConcatSquash {
        input: Option<usize>,
        out: usize,
    },
    ConcatLinear {
        input: Option<usize>,
        out: usize,
    },
    /// FFJORD's convolution of [t, x], the time as an extra input channel; stride 1 and
    /// "same" padding (odd kernels), so the image keeps its size.
    ConcatConv2d {
        input: Option<usize>,
        out: usize,
        kernel: usize,
    },
    /// Convolution whose last channel is minus the aggregate of the others, per position.
    FarkasConv2d {
        input: Option<usize>,
        out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        agg: Aggregate,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeErrorKind {
    /// The shape arriving does not fit the layer.
    Mismatch,
    /// Pooling whose kernel differs from its stride: candle has no backward for it.
    PoolStride,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    /// Index of the offending layer in the chain (top level).
    pub layer: usize,
    pub kind: ShapeErrorKind,
    pub message: String,
}

fn mismatch(layer: usize, message: String) -> ShapeError {
    ShapeError { layer, kind: ShapeErrorKind::Mismatch, message }
}

fn show(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

fn conv_out(i: usize, size: usize, kernel: usize, stride: usize, pad: usize, what: &str) -> Result<usize, ShapeError> {
    if size + 2 * pad < kernel || stride == 0 {
        return Err(mismatch(
            i,
            format!("{what} kernel {kernel} is larger than the input size {size} (+2*{pad} padding)"),
        ));
    }
    Ok((size + 2 * pad - kernel) / stride + 1)
}

/// The shape after one layer.
pub fn infer_one(i: usize, l: &LayerSpec, s: &[usize]) -> Result<Vec<usize>, ShapeError> {
    Ok(match l {
        LayerSpec::Linear { input, out }
        | LayerSpec::FarkasLinear { input, out, .. }
        | LayerSpec::ConcatSquash { input, out }
        | LayerSpec::ConcatLinear { input, out } => {
            if s.len() != 1 {
                return Err(mismatch(
                    i,
                    format!("a dense layer needs vectors but receives shape {}; put `flatten` before it", show(s)),
                ));
            }
            if let Some(d) = input
                && *d != s[0]
            {
                return Err(mismatch(i, format!("this layer expects {d} input features but receives {}", s[0])));
            }
            vec![*out]
        }
        LayerSpec::Conv2d { input, out, kernel, stride, pad }
        | LayerSpec::FarkasConv2d { input, out, kernel, stride, pad, .. } => {
            if s.len() != 3 {
                return Err(mismatch(
                    i,
                    format!("a convolution needs images [channels, height, width] but receives shape {}", show(s)),
                ));
            }
            if let Some(c) = input
                && *c != s[0]
            {
                return Err(mismatch(i, format!("this convolution expects {c} input channels but receives {}", s[0])));
            }
            vec![
                *out,
                conv_out(i, s[1], *kernel, *stride, *pad, "convolution")?,
                conv_out(i, s[2], *kernel, *stride, *pad, "convolution")?,
            ]
        }
        LayerSpec::ConcatConv2d { input, out, kernel } => {
            if kernel % 2 == 0 {
                return Err(mismatch(
                    i,
                    format!("a field's convolution keeps the image size with an odd kernel, not {kernel}"),
                ));
            }
            // A stride-1 convolution with same padding, as far as shapes go.
            let conv = LayerSpec::Conv2d { input: *input, out: *out, kernel: *kernel, stride: 1, pad: kernel / 2 };
            infer_one(i, &conv, s)?
        }
        LayerSpec::MaxPool { kernel, stride } | LayerSpec::AvgPool { kernel, stride } => {
            if s.len() != 3 {
                return Err(mismatch(
                    i,
                    format!("pooling needs images [channels, height, width] but receives shape {}", show(s)),
                ));
            }
            if kernel != stride {
                return Err(ShapeError {
                    layer: i,
                    kind: ShapeErrorKind::PoolStride,
                    message: format!(
                        "pooling with kernel {kernel} and stride {stride} cannot be trained: candle differentiates pooling only when kernel = stride"
                    ),
                });
            }
            vec![
                s[0],
                conv_out(i, s[1], *kernel, *stride, 0, "pooling")?,
                conv_out(i, s[2], *kernel, *stride, 0, "pooling")?,
            ]
        }
        LayerSpec::GlobalAvgPool => {
            if s.len() != 3 {
                return Err(mismatch(i, format!("global pooling needs images but receives shape {}", show(s))));
            }
            vec![s[0]]
        }
        LayerSpec::Flatten => vec![s.iter().product()],
        LayerSpec::Dropout { .. } | LayerSpec::Act(_) => s.to_vec(),
        LayerSpec::BatchNorm => {
            if s.len() != 1 && s.len() != 3 {
                return Err(mismatch(i, format!("batch norm needs vectors or images, receives shape {}", show(s))));
            }
            s.to_vec()
        }
        LayerSpec::Normalize { mean, std } => {
            let c = s[0];
            for (name, v) in [("mean", mean), ("std", std)] {
                if v.len() != 1 && v.len() != c {
                    return Err(mismatch(i, format!("normalize has {} {name} values for {c} channels", v.len())));
                }
            }
            s.to_vec()
        }
        LayerSpec::NeuralOde { field, .. } => {
            let inner = infer_shapes(field, s)
                .map_err(|e| mismatch(i, format!("inside the neural ODE's field: {}", e.message)))?;
            let out = inner.last().cloned().unwrap_or_else(|| s.to_vec());
            if out != s {
                return Err(mismatch(
                    i,
                    format!(
                        "a neural ODE's field must return the shape it receives, {}, but returns {}",
                        show(s),
                        show(&out)
                    ),
                ));
            }
            s.to_vec()
        }
        LayerSpec::Residual { body, farkas } => {
            let inner =
                infer_shapes(body, s).map_err(|e| mismatch(i, format!("inside the residual block: {}", e.message)))?;
            let out = inner.last().cloned().unwrap_or_else(|| s.to_vec());
            let mut want = s.to_vec();
            if farkas.is_some() {
                want[0] = want[0].saturating_sub(1);
            }
            if out != want {
                return Err(mismatch(
                    i,
                    format!("a residual block must return shape {} but its body returns {}", show(&want), show(&out)),
                ));
            }
            s.to_vec()
        }
    })
}

impl LayerSpec {
    /// The layer depends on time: it belongs in a CNF's field, not in a classifier.
    pub fn is_time_dependent(&self) -> bool {
        matches!(self, LayerSpec::ConcatSquash { .. } | LayerSpec::ConcatLinear { .. } | LayerSpec::ConcatConv2d { .. })
    }
}

/// The shape after each layer, given the shape entering the chain.
pub fn infer_shapes(layers: &[LayerSpec], input: &[usize]) -> Result<Vec<Vec<usize>>, ShapeError> {
    let mut shape = input.to_vec();
    let mut out = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        shape = infer_one(i, l, &shape)?;
        out.push(shape.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_flow_through_a_convnet_and_mismatches_name_the_layer() {
        let chain = vec![
            LayerSpec::Conv2d { input: None, out: 8, kernel: 3, stride: 1, pad: 1 },
            LayerSpec::MaxPool { kernel: 2, stride: 2 },
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 10 },
        ];
        let s = infer_shapes(&chain, &[1, 28, 28]).unwrap();
        assert_eq!(s, vec![vec![8, 28, 28], vec![8, 14, 14], vec![8 * 14 * 14], vec![10]]);
        let e = infer_shapes(&chain[3..], &[1, 28, 28]).unwrap_err();
        assert!(e.message.contains("flatten"));
        let e = infer_shapes(&[LayerSpec::AvgPool { kernel: 3, stride: 2 }], &[1, 8, 8]).unwrap_err();
        assert_eq!(e.kind, ShapeErrorKind::PoolStride);
        let bad = vec![LayerSpec::Linear { input: Some(3), out: 8 }];
        assert_eq!(infer_shapes(&bad, &[2]).unwrap_err().layer, 0);
    }
}
