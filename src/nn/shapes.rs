//! Layer specifications and static width inference through a chain.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Tanh,
    Softplus,
    Sigmoid,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerSpec {
    /// `input` is inferred when absent.
    Linear {
        input: Option<usize>,
        out: usize,
    },
    Act(Activation),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    /// Index of the offending layer in the chain.
    pub layer: usize,
    pub expected: usize,
    pub got: usize,
}

/// The width after each layer, given the width entering the chain.
pub fn infer_widths(layers: &[LayerSpec], input: usize) -> Result<Vec<usize>, ShapeError> {
    let mut width = input;
    let mut out = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        if let LayerSpec::Linear { input: declared, out: o } = l {
            if let Some(d) = declared
                && *d != width
            {
                return Err(ShapeError { layer: i, expected: *d, got: width });
            }
            width = *o;
        }
        out.push(width);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_flow_through_and_mismatch_names_the_layer() {
        let chain = vec![
            LayerSpec::Linear { input: None, out: 8 },
            LayerSpec::Act(Activation::Relu),
            LayerSpec::Linear { input: Some(8), out: 3 },
        ];
        assert_eq!(infer_widths(&chain, 2).unwrap(), vec![8, 8, 3]);
        let bad = vec![LayerSpec::Linear { input: Some(3), out: 8 }];
        assert_eq!(infer_widths(&bad, 2), Err(ShapeError { layer: 0, expected: 3, got: 2 }));
    }
}
