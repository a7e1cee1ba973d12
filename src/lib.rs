//! evserver's engine: the `evserver._evserver` extension module.
use pyo3::prelude::*;

#[pymodule]
fn _evserver(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
