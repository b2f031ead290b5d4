//! Times the layers of a 10-seed batch on this machine: grouped against per-model
//! convolutions, and the other layers. `cargo run --release --example conv_layouts`.
use tch::{Device, Kind, Tensor};
fn time<F: FnMut()>(name: &str, n: usize, mut f: F) {
    for _ in 0..3 {
        f();
    }
    let t = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    println!("{name:<40} {:8.3} ms", t.elapsed().as_secs_f64() * 1000.0 / n as f64);
}
fn main() {
    let s = 10i64;
    let b = 32i64;
    let o = (Kind::Float, Device::Cpu);
    let x1 = Tensor::randn([b, s * 3, 32, 32], o);
    let w1 = Tensor::randn([s * 6, 3, 5, 5], o).set_requires_grad(true);
    time("conv1 grouped fwd", 50, || {
        let _ = x1.conv2d(&w1, None::<Tensor>, [1, 1], [0, 0], [1, 1], s);
    });
    time("conv1 grouped fwd+bwd", 50, || {
        let y = x1.conv2d(&w1, None::<Tensor>, [1, 1], [0, 0], [1, 1], s);
        y.sum(Kind::Float).backward();
    });
    let xs = Tensor::randn([b, 3, 32, 32], o);
    let ws = Tensor::randn([6, 3, 5, 5], o).set_requires_grad(true);
    time("conv1 single fwd+bwd x10", 20, || {
        for _ in 0..s {
            let y = xs.conv2d(&ws, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
            y.sum(Kind::Float).backward();
        }
    });
    let x2 = Tensor::randn([b, s * 6, 14, 14], o).set_requires_grad(true);
    let w2 = Tensor::randn([s * 16, 6, 5, 5], o).set_requires_grad(true);
    time("conv2 grouped fwd+bwd", 50, || {
        let y = x2.conv2d(&w2, None::<Tensor>, [1, 1], [0, 0], [1, 1], s);
        y.sum(Kind::Float).backward();
    });
    let xs2 = Tensor::randn([b, 6, 14, 14], o).set_requires_grad(true);
    let ws2 = Tensor::randn([16, 6, 5, 5], o).set_requires_grad(true);
    time("conv2 single fwd+bwd x10", 20, || {
        for _ in 0..s {
            let y = xs2.conv2d(&ws2, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
            y.sum(Kind::Float).backward();
        }
    });
    let xf = Tensor::randn([s, b, 400], o).set_requires_grad(true);
    let wf = Tensor::randn([s, 120, 400], o).set_requires_grad(true);
    time("fc1 bmm fwd+bwd", 50, || {
        let y = xf.matmul(&wf.transpose(1, 2));
        y.sum(Kind::Float).backward();
    });
    let y1 = Tensor::randn([b, s * 6, 28, 28], o).set_requires_grad(true);
    time("maxpool1 fwd+bwd", 50, || {
        let y = y1.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        y.sum(Kind::Float).backward();
    });
    time("relu1 fwd+bwd", 50, || {
        let y = y1.relu();
        y.sum(Kind::Float).backward();
    });
    let g = Tensor::ones([s * 6], o).set_requires_grad(true);
    let bb = Tensor::zeros([s * 6], o).set_requires_grad(true);
    time("bn1 fwd+bwd", 50, || {
        let y = y1.batch_norm(Some(&g), Some(&bb), None::<&Tensor>, None::<&Tensor>, true, 0.1, 1e-5, true);
        y.sum(Kind::Float).backward();
    });
    time("mean-center1 fwd+bwd", 50, || {
        let y = &y1 - y1.mean_dim([0i64, 2, 3].as_slice(), true, None::<Kind>);
        y.sum(Kind::Float).backward();
    });
}
