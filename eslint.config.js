// Lint rules: typescript-eslint's recommended type-aware set, plus a guard against one
// service reaching into another's internals (shared code lives in services/common and the
// model library in services/model).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
              group: ['../*/**', '!../common/**', '!../model/**', '!../registry/**'],
              message:
                'Import from the libraries (common, model, registry), not from another service or the simulator (test data: the CLI, tests and benchmarks wire it in). test/unit/architecture.test.ts holds the whole layer table.',
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
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { URL: 'readonly', process: 'readonly', console: 'readonly' } },
  },
);
