export const USAGE = `usage: quantlens <command> [options]

commands:
  inspect MODEL [--json]            describe a model: opset, operators, parameters, inputs/outputs, size
  run MODEL [--device auto|cpu|cuda] [--runs N] [--json]
                                    run the model once in onnxruntime on seeded random inputs
  fixture NAME -o OUT               write a built-in sample model: mlp | cnn | transformer | tiny-vlm

  quantize, compare, sensitivity, prune, sweep   (not implemented yet)

exit status: 0 success, 1 failure, 2 bad usage`;
