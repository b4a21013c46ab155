/**
 * Direct 3-d convolution for the CPU backend, written for speed in plain JS:
 * - zero padding is applied once up front (a padded copy), so the inner loops have no bounds checks;
 * - four output channels are computed together, so each input value loaded serves four accumulators;
 * - for kernel width 3 the three taps of a row are summed in registers before touching the accumulator.
 * Accumulation is in f64 (Float64Array planes), bias first, then channels/taps in order.
 */

/** x (N, Ci, T, H, W) f32, w (Co, Ci, KT, KH, KW) f32 -> (N, Co, OT, OH, OW) f32 values. */
export function conv3dF32(
  xIn: Float32Array,
  xShape: readonly number[],
  w: Float32Array,
  wShape: readonly number[],
  bias: Float32Array | null,
  stride: readonly number[],
  padding: readonly number[],
  outShape: readonly number[],
): Float32Array {
  const [N, Ci] = xShape;
  const [Co, , KT, KH, KW] = wShape;
  const [, , OT, OH, OW] = outShape;
  const [st, sh, sw] = stride;
  const [pt, ph, pw] = padding;
  // Zero-padded input: (N, Ci, T', H', W').
  const T = xShape[2] + 2 * pt, H = xShape[3] + 2 * ph, W = xShape[4] + 2 * pw;
  const x = pt || ph || pw ? padZeros(xIn, N * Ci, xShape[2], xShape[3], xShape[4], pt, ph, pw) : xIn;
  const vol = T * H * W;
  const plane = OT * OH * OW;
  const out = new Float32Array(N * Co * plane);
  const acc = [new Float64Array(plane), new Float64Array(plane), new Float64Array(plane), new Float64Array(plane)];
  const kvol = KT * KH * KW;
  for (let n = 0; n < N; n++) {
    for (let co0 = 0; co0 < Co; co0 += 4) {
      const cb = Math.min(4, Co - co0);
      for (let c = 0; c < cb; c++) acc[c].fill(bias ? bias[co0 + c] : 0);
      // Unused accumulator slots get zero weights (their planes are never written out).
      const a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
      for (let ci = 0; ci < Ci; ci++) {
        const xb = (n * Ci + ci) * vol;
        const wOf = (c: number) => (c < cb ? ((co0 + c) * Ci + ci) * kvol : -1);
        const wb = [wOf(0), wOf(1), wOf(2), wOf(3)];
        const wt = (c: number, k: number) => (wb[c] < 0 ? 0 : w[wb[c] + k]);
        for (let kt = 0; kt < KT; kt++)
          for (let kh = 0; kh < KH; kh++) {
            const kk = (kt * KH + kh) * KW;
            if (KW === 3 && sw === 1) {
              const w00 = wt(0, kk), w01 = wt(0, kk + 1), w02 = wt(0, kk + 2);
              const w10 = wt(1, kk), w11 = wt(1, kk + 1), w12 = wt(1, kk + 2);
              const w20 = wt(2, kk), w21 = wt(2, kk + 1), w22 = wt(2, kk + 2);
              const w30 = wt(3, kk), w31 = wt(3, kk + 1), w32 = wt(3, kk + 2);
              for (let ot = 0; ot < OT; ot++) {
                const tb = xb + (ot * st + kt) * H * W;
                for (let oh = 0; oh < OH; oh++) {
                  let xi = tb + (oh * sh + kh) * W;
                  const o = (ot * OH + oh) * OW;
                  const end = o + OW;
                  let x0 = x[xi], x1 = x[xi + 1];
                  for (let p = o; p < end; p++) {
                    const x2 = x[xi + 2];
                    a0[p] += w00 * x0 + w01 * x1 + w02 * x2;
                    a1[p] += w10 * x0 + w11 * x1 + w12 * x2;
                    a2[p] += w20 * x0 + w21 * x1 + w22 * x2;
                    a3[p] += w30 * x0 + w31 * x1 + w32 * x2;
                    x0 = x1;
                    x1 = x2;
                    xi++;
                  }
                }
              }
            } else {
              for (let kw = 0; kw < KW; kw++) {
                const w0 = wt(0, kk + kw), w1 = wt(1, kk + kw), w2 = wt(2, kk + kw), w3 = wt(3, kk + kw);
                for (let ot = 0; ot < OT; ot++) {
                  const tb = xb + (ot * st + kt) * H * W;
                  for (let oh = 0; oh < OH; oh++) {
                    let xi = tb + (oh * sh + kh) * W + kw;
                    const o = (ot * OH + oh) * OW;
                    const end = o + OW;
                    for (let p = o; p < end; p++, xi += sw) {
                      const xv = x[xi];
                      a0[p] += w0 * xv;
                      a1[p] += w1 * xv;
                      a2[p] += w2 * xv;
                      a3[p] += w3 * xv;
                    }
                  }
                }
              }
            }
          }
      }
      for (let c = 0; c < cb; c++) out.set(acc[c], (n * Co + co0 + c) * plane);
    }
  }
  return out;
}

function padZeros(x: Float32Array, planes: number, T: number, H: number, W: number, pt: number, ph: number, pw: number): Float32Array {
  const T2 = T + 2 * pt, H2 = H + 2 * ph, W2 = W + 2 * pw;
  const y = new Float32Array(planes * T2 * H2 * W2);
  for (let p = 0; p < planes; p++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const src = ((p * T + t) * H + h) * W;
        y.set(x.subarray(src, src + W), ((p * T2 + t + pt) * H2 + h + ph) * W2 + pw);
      }
  return y;
}
