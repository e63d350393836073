//! What the benchmarks share.

use flowline::nn::{Activation, LayerSpec};

/// `normalize |> convnet(classes: 10, width: 16)` of std.models: the MNIST model of
/// pipelines/mnist_convnet.flow, layer for layer (so saved weights load by name).
pub fn mnist_convnet() -> Vec<LayerSpec> {
    let conv = |out| LayerSpec::Conv2d { input: None, out, kernel: 3, stride: 1, pad: 1 };
    vec![
        LayerSpec::Normalize { mean: vec![0.1307], std: vec![0.3081] },
        conv(16),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Act(Activation::Relu),
        conv(32),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Flatten,
        LayerSpec::Linear { input: None, out: 128 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Dropout { p: 0.25 },
        LayerSpec::Linear { input: None, out: 10 },
    ]
}
