// Lint rules: typescript-eslint's recommended type-aware set, plus a guard against one
// service reaching into another's internals (shared code lives in services/common and the
// model library in services/model).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Size limits for services/: files of at most 400 lines, functions of at most 60.
const sizeRules = ({ lines = 400, fn = 60 } = {}) => ({
  'max-lines': ['error', { max: lines }],
  'max-lines-per-function': ['error', { max: fn }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.stack/**', 'bench/.venv/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'bin/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  {
    files: ['services/*/**/*.ts'],
    ignores: ['services/common/**', 'services/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*/**', '!../common/**', '!../model/**', '!../registry/**', '!../training/**'],
              message:
                'Import from the libraries (common, model, registry, training), not from another service or the simulator (test data: the CLI, tests and benchmarks wire it in). test/unit/architecture.test.ts holds the whole layer table.',
            },
          ],
        },
      ],
    },
  },
  // services/common is the bottom layer: it imports no other folder of services/.
  ...[
    ['services/common/*.ts', '../*'],
    ['services/common/*/**/*.ts', '../../*'],
  ].map(([files, parent]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: [parent], message: 'services/common is the bottom layer: it imports no service.' },
          ],
        },
      ],
    },
  })),
  // Errors thrown in services/ carry a code of services/common/error-codes.ts (a bug: invariant()).
  {
    files: ['services/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ThrowStatement > NewExpression[callee.name=/^(Error|TypeError|RangeError)$/]',
          message:
            'Throw a FlywheelError (or a subclass) with a code of services/common/error-codes.ts; for a condition that cannot fail, invariant().',
        },
      ],
    },
  },
  { files: ['services/**/*.ts'], rules: sizeRules() },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { URL: 'readonly', process: 'readonly', console: 'readonly' } },
  },
);
