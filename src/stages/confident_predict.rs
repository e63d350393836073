//! `confident_predict`: each example's prediction with its calibrated probability of being
//! right, read from a `confidence` result's histogram after one forward pass.

use super::confidence_scores::{evaluate, score_name};
use super::confidence_stored::Stored;
use super::layers::check_model;
use super::model::model_ref;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Kind, Metrics, Output, RunCtx, Stage, StaticCall};

pub(super) struct ConfidentPredict;

impl Stage for ConfidentPredict {
    fn output(&self) -> &'static Kind {
        &crate::lang::TABLE
    }
    fn metrics(&self, _args: &Args) -> Vec<String> {
        ["mean_probability", "accuracy"].map(String::from).to_vec()
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        check_model(cx, "model", "data").0
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let stored = cx.input::<Stored>("histogram")?;
        let mut rng = cx.take_rng();
        let net = model_ref(cx, "model", &data.shape, &mut rng)?;
        let a = cx.args();
        let name = a.text("score").unwrap_or("neg_log_pmax").to_string();
        let k = a.int("k").unwrap_or(1) as usize;
        let batch = a.int("batch").unwrap_or(500) as usize;
        let wanted = score_name(&name, k);
        let entry = stored.entries.iter().find(|e| e.score == wanted && e.k == k).ok_or_else(|| {
            let have: Vec<String> = stored.entries.iter().map(|e| format!("{} (top-{})", e.score, e.k)).collect();
            cx.error(Code::R1002, format!("the histogram holds no `{name}` for top-{k}"))
                .hint(format!("it holds: {}", have.join(", ")))
        })?;
        let ks = [k];
        let names = [name.clone()];
        let ev = evaluate(cx, &net, &data, &names, &ks, stored.passes, batch, &mut rng)?;
        let values = &ev.scores[0].1;
        let mut csv = String::from(if data.y.is_some() {
            "index,prediction,probability,label,correct\n"
        } else {
            "index,prediction,probability\n"
        });
        let mut total = 0.0;
        for i in 0..data.n {
            let p = entry.histogram.probability(values[i]);
            total += p;
            match &data.y {
                Some(y) => {
                    csv.push_str(&format!("{i},{},{p},{},{}\n", ev.predictions[i], y[i], u8::from(ev.correct[0][i])))
                }
                None => csv.push_str(&format!("{i},{},{p}\n", ev.predictions[i])),
            }
        }
        let mut metrics = Metrics::new();
        metrics.insert("mean_probability".into(), total / data.n.max(1) as f64);
        let acc = if data.y.is_some() {
            ev.correct[0].iter().filter(|c| **c).count() as f64 / data.n.max(1) as f64
        } else {
            f64::NAN
        };
        metrics.insert("accuracy".into(), acc);
        let files = vec![cx.write_file("predictions.csv", csv.as_bytes())?];
        Ok(Output::nothing(&crate::lang::TABLE, metrics, files))
    }
}
