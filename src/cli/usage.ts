export const USAGE = `usage: quantlens <command> [options]

commands:
  inspect MODEL [--json]            describe a model: opset, operators, parameters, inputs/outputs, size
  run MODEL [--device auto|cpu|cuda] [--runs N] [--input-shape NAME=1x3x48x320]... [--json]
                                    run the model once in onnxruntime on seeded random inputs;
                                    says which sizes its dynamic dimensions ran with
  fixture NAME -o OUT               write a built-in sample model: mlp | cnn | transformer | tiny-vlm

  quantize MODEL -o OUT --mode weight|dynamic|static [--bits 8|4] [--block-size N] [--algorithm rtn|gptq [--act-order]]
           [--per-channel|--per-tensor] [--symmetric] [--calibration DIR|random:N]
           [--calibration-method minmax|percentile|entropy|mse] [--percentile P] [--samples N]
           [--static-ops auto|compute|residual|all] [--objective latency|size|accuracy] [--no-smooth] [--reduce-range auto|on|off]
           [--exclude GLOB]... [--recipe FILE] [--device auto|cpu|cuda] [--input-shape NAME=DxD...]... [--json]
           [--budget DROP [--budget-metric cosine|top1|task]] [--progressive [--steps N]]
           [--evaluator 'python eval.py --model {model}' [--lower-is-better] [--evaluator-timeout S]]
                                    mixed precision: keep the fewest sensitive layers float within DROP
  compare REFERENCE CANDIDATE [--data DIR|random:N] [--samples N] [--device ...] [--metric cosine|top1|sequence|ctc|iou]
           [--input-shape NAME=DxD...]... [--json]

  sensitivity MODEL --calibration DIR|random:N [--method local|end-to-end] [--mode static|weight|dynamic]
           [--bits 8|4] [--samples N] [--exclude GLOB]... [--workers N] [--input-shape NAME=DxD...]... [-o FILE] [--json]
                                    per-layer sensitivity, written to MODEL.sensitivity.json;
                                    end-to-end runs variants in N worker threads (default: cores, max 4)

  qat-plan MODEL -o PLAN.json [--calibration DIR|random:N] [--mode static|weight] [--bits 8|4] [--recipe FILE]
                                    per-module fake-quant plan for training in PyTorch (python/quantlens_qat.py)

  prune MODEL -o OUT --method magnitude|nm|structured [--sparsity F] [--scope global|lamp|layer] [--pattern 2:4]
           [--importance l1|l2|activation] [--min-density F] [--calibration DIR|random:N] [--samples N]
           [--reconstruct] [--round-to auto|N] [--prune-norm] [--no-compensate] [--allocation uniform|global]
           [--exclude GLOB]... [--masks FILE] [--device auto|cpu|cuda] [--input-shape NAME=DxD...]... [--json]
                                    zero weights (magnitude, N:M) or remove channels and heads (structured);
                                    --prune-norm also shrinks hidden sizes under LayerNormalization (approximate);
                                    structured: --round-to auto keeps conv channels in the CPU's blocks, biases
                                    take the removed channels' mean (--no-compensate), --allocation global
                                    removes the least important sets wherever they are;
                                    --masks writes what was kept for fine-tuning (python/quantlens_prune.py)

  sweep MODEL --sparsities 0.1,0.3,0.5 [--method magnitude|structured] [--iterative] [-o REPORT.json]
           [--scope ...] [--importance ...] [--reconstruct] [--round-to auto|N] [--prune-norm] [--no-compensate]
           [--allocation ...] [--calibration ...] [--exclude GLOB]...
           [--evaluator 'python eval.py --model {model}' [--lower-is-better]] [--device ...] [--json]
                                    prune at each sparsity and measure size, parameters, latency, fidelity;
                                    points print as they finish; a rerun resumes; models kept beside REPORT

--input-shape NAME=DxD...: sizes for an input with dynamic dimensions (random samples take them, images are
resized to them); without it, random inputs use 1 for the batch, 224 for image height/width, 16 otherwise.

exit status: 0 success, 1 failure, 2 bad usage`;
