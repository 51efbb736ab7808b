import * as ort from 'onnxruntime-node';

/** A tensor as it crosses a thread boundary (ort.Tensor itself does not survive structured cloning). */
export interface WireTensor { type: ort.Tensor.Type; dims: readonly number[]; data: ort.Tensor.DataType }

export const toWire = (t: ort.Tensor): WireTensor => ({ type: t.type, dims: t.dims, data: t.data });
export const fromWire = (w: WireTensor): ort.Tensor => new ort.Tensor(w.type, w.data as Float32Array, w.dims);

/** A record of named tensors, each through toWire / fromWire. */
export const recordToWire = (r: Record<string, ort.Tensor>): Record<string, WireTensor> => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, toWire(t)]));
export const recordFromWire = (r: Record<string, WireTensor>): Record<string, ort.Tensor> => Object.fromEntries(Object.entries(r).map(([k, w]) => [k, fromWire(w)]));
