"""The BiLSTM's CPU training path: the function a `Bidirectional(LSTM)` layer computes, with a faster gradient.

    python -m pytest tests/test_lstm.py   # forward and gradients against keras.layers.LSTM

`bidirectional_lstm(layer, x)` computes exactly what `layer(x)` computes for the model's BiLSTM layers
(`asr.model.build_model`: tanh/sigmoid, no mask, no dropout inside the layer, zero initial state, outputs
concatenated), from the same variables (`kernel [D, 4H]`, `recurrent_kernel [H, 4H]`, `bias [4H]`, gates
in Keras' order i, f, c, o): a bundle never sees it, and a GPU keeps Keras' cuDNN kernel. Why it is faster
than Keras' CPU LSTM under autodiff (forward + backward of a 256-unit layer on the bench batch: ~1.3x less CPU
time; the whole bench step ~1.5x faster, 2026-12):

- the input projections of all time steps are one matrix product `x @ kernel` before the loop, not one
  small product per step;
- a custom gradient: the backward loop carries only the recurrence (one `dz @ recurrent_kernel^T` product
  and six elementwise ops per step); the weight gradients are formed after it as one large product each
  (`dW = X^T dZ`, `dU = H^T dZ`, `db = 1^T dZ`), where autodiff through the loop does three small
  products per step and accumulates them;
- the forward loop stores what the backward one needs (the gates' derivative factors), so no activation
  is recomputed;
- the gate columns are reordered to (i, f, o, c) inside the computation so one sigmoid covers three gates.

The two directions are two independent loops: with one intra-op thread each (`asr.train.intra_op_threads`)
TensorFlow's inter-op threads run them side by side, so the two cores of a small machine each take one
direction (one loop over a batched product of both directions took ~1.4x the CPU time, 2026-12).

With `products="bfloat16"` every matrix product takes bfloat16 operands (the weights, inputs, states and
gradients rounded to 8 significant bits) while the gates, the cell state, the weights and their gradients
stay float32: mixed precision, as Keras' float16 policy does on a GPU. Where the CPU multiplies bfloat16
natively (`asr.runtime.native_bfloat16`) this made the bench step ~1.3x faster (2026-12); the BiLSTM stack
is then ~60 % matrix products at bfloat16 speed.
"""

from __future__ import annotations

from typing import Any

PRODUCTS = ("float32", "bfloat16")  # the operand type of the matrix products (`bidirectional_lstm`)


def check_products(products: str) -> str:
    """`products` if it is one of PRODUCTS, else ValueError naming the choices."""
    if products not in PRODUCTS:
        raise ValueError(f"products={products!r}; expected one of {PRODUCTS}")
    return products


def supports(layer: Any) -> bool:
    """True when `layer` is a `Bidirectional(LSTM)` whose computation `bidirectional_lstm` reproduces."""
    import keras

    if not isinstance(layer, keras.layers.Bidirectional) or layer.merge_mode != "concat":
        return False
    cells = [layer.forward_layer, layer.backward_layer]
    return all(isinstance(lstm, keras.layers.LSTM) and lstm.return_sequences and not lstm.stateful
               and not lstm.return_state and lstm.cell.use_bias and lstm.cell.dropout == 0
               and lstm.cell.recurrent_dropout == 0 and lstm.cell.activation is keras.activations.tanh
               and lstm.cell.recurrent_activation is keras.activations.sigmoid
               and lstm.compute_dtype == "float32" for lstm in cells) \
        and not layer.forward_layer.go_backwards and layer.backward_layer.go_backwards


def bidirectional_lstm(layer: Any, x: Any, products: str = "float32") -> Any:
    """`layer(x)` for a `Bidirectional(LSTM)` layer that `supports`: x float32 [B, T, D] -> [B, T, 2H]; with
    `products="bfloat16"` the same function in mixed precision (see the module's docstring)."""
    import tensorflow as tf

    xt = tf.transpose(x, [1, 0, 2])  # [B, T, D] -> [T, B, D]: one time step is a contiguous [B, D] block
    forward = lstm_sequence(xt, *_weights(layer.forward_layer), reverse=False, products=products)
    backward = lstm_sequence(xt, *_weights(layer.backward_layer), reverse=True, products=products)
    return tf.transpose(tf.concat([forward, backward], -1), [1, 0, 2])  # [T, B, 2H] -> [B, T, 2H]


def _weights(lstm: Any) -> tuple[Any, Any, Any]:
    cell = lstm.cell
    return cell.kernel, cell.recurrent_kernel, cell.bias


def lstm_sequence(xt: Any, kernel: Any, recurrent_kernel: Any, bias: Any, reverse: bool,
                  products: str = "float32") -> Any:
    """One LSTM direction over time-major `xt float32 [T, B, D]` -> `hs [T, B, H]` (`reverse`: from t = T-1 down
    to 0, each output at its own time step, as Keras' `go_backwards` layer inside `Bidirectional` returns it).

    Weights in Keras' layout and gate order (i, f, c, o); the initial state is zero. `products`: the operand
    type of the matrix products (PRODUCTS)."""
    import tensorflow as tf

    check_products(products)

    def ifoc(w: Any) -> Any:  # gate columns (i, f, c, o) -> (i, f, o, c): the three sigmoid gates side by side
        i, f, c, o = tf.split(tf.convert_to_tensor(w), 4, axis=-1)
        return tf.concat([i, f, o, c], -1)

    return _make_sequence_fn(reverse, products)(xt, ifoc(kernel), ifoc(recurrent_kernel), ifoc(bias))


def _make_sequence_fn(reverse: bool, products: str) -> Any:
    """The custom-gradient LSTM of one direction, gates in (i, f, o, c) order, products of `products` operands
    (float32 results)."""
    import tensorflow as tf

    low = tf.as_dtype(products)

    def mm(a: Any, b: Any, **kwargs: Any) -> Any:  # a @ b of `low` operands, a float32 result (tf.cast to a
        return tf.cast(tf.matmul(tf.cast(a, low), b, **kwargs), tf.float32)  # tensor's own type adds no op)

    @tf.custom_gradient
    def sequence(xt: Any, w: Any, u: Any, b: Any) -> Any:
        n_steps, batch = tf.shape(xt)[0], tf.shape(xt)[1]
        d, h = w.shape[0], u.shape[0]
        x2 = tf.reshape(xt, [-1, d])  # [T, B, D] -> [T*B, D]
        x2, w_low, u_low = (tf.cast(v, low) for v in (x2, w, u))  # operands cast once (in float32, no op)
        z = tf.reshape(mm(x2, w_low) + b, [n_steps, batch, 4 * h])  # every step's input projection at once
        zeros = tf.zeros([batch, h])
        first, step = (n_steps - 1, -1) if reverse else (0, 1)

        def forward_step(n: Any, h_prev: Any, c_prev: Any, *arrays: Any) -> tuple:
            t = first + step * n
            g = z[t] + mm(h_prev, u_low)  # [B, 4H] pre-activations
            s = tf.sigmoid(g[:, :3 * h])  # input, forget and output gates
            cand = tf.tanh(g[:, 3 * h:])  # candidate cell
            i, f, o = s[:, :h], s[:, h:2 * h], s[:, 2 * h:]
            c = f * c_prev + i * cand
            tanh_c = tf.tanh(c)
            h_t = o * tanh_c
            # d pre-activation / d(dc or dh), gate by gate: dz = [dc, dc, dh, dc] * q (sigmoid' = s - s^2)
            q = tf.concat([(s - s * s) * tf.concat([cand, c_prev, tanh_c], -1), i * (1.0 - cand * cand)], -1)
            p = o * (1.0 - tanh_c * tanh_c)  # d c / d h through h = o * tanh(c)
            out = (h_t, q, p, f)
            return (n + 1, h_t, c, *(a.write(t, v) for a, v in zip(arrays, out)))

        arrays = [tf.TensorArray(tf.float32, size=n_steps) for _ in range(4)]
        # parallel_iterations=1: each step needs the previous one (measured ~2 % faster than the default 10)
        _, _, _, hs_ta, q_ta, p_ta, f_ta = tf.while_loop(lambda n, *_: n < n_steps, forward_step,
                                                         (0, zeros, zeros, *arrays), parallel_iterations=1)
        hs = hs_ta.stack()  # [T, B, H]

        def grad(dhs: Any) -> tuple:
            u_t = tf.transpose(u_low)  # [4H, H]
            bfirst, bstep = (0, 1) if reverse else (n_steps - 1, -1)

            def backward_step(n: Any, dh_next: Any, dcf: Any, dz_ta: Any) -> tuple:
                t = bfirst + bstep * n
                dh = dhs[t] + dh_next  # from the output and from the next step's gates
                dc = dcf + dh * p_ta.read(t)
                dz = tf.cast(tf.concat([dc, dc, dh, dc], -1) * q_ta.read(t), low)  # [B, 4H] pre-activation grads
                return n + 1, mm(dz, u_t), dc * f_ta.read(t), dz_ta.write(t, dz)

            _, _, _, dz_ta = tf.while_loop(lambda n, *_: n < n_steps, backward_step,
                                           (0, zeros, zeros, tf.TensorArray(low, size=n_steps)),
                                           parallel_iterations=1)
            dz = tf.reshape(dz_ta.stack(), [-1, 4 * h])  # [T, B, 4H] -> [T*B, 4H]
            h2, inner = tf.cast(tf.reshape(hs, [-1, h]), low), (n_steps - 1) * batch
            # dU = sum over steps of h_prev^T dz; h_prev is the previous step's h (zero at the first step)
            if reverse:
                du = mm(h2[batch:], dz[:inner], transpose_a=True)
            else:
                du = mm(h2[:inner], dz[batch:], transpose_a=True)
            dw = mm(x2, dz, transpose_a=True)
            db = tf.reshape(mm(tf.ones([1, n_steps * batch]), dz), [4 * h])  # a product: faster than a sum
            dx = tf.reshape(mm(dz, w_low, transpose_b=True), [n_steps, batch, d])
            return dx, dw, du, db

        return hs, grad

    return sequence
