/** Elementwise ops of one tensor: their output has their input's shape (and channels). */
export const UNARY_ELEMENTWISE = [
  'Relu', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'Mish', 'Gelu', 'FastGelu',
  'Erf', 'Abs', 'Neg', 'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Identity', 'Dropout', 'Cast', 'Floor', 'Ceil', 'Round', 'Clip', 'Sin', 'Cos', 'Not',
] as const;
