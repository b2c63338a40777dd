import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';
import tokenwarden from './eslint-rules/no-import-cycle.js';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Package boundaries (design brief): core never reaches into the packages built on it.
    // Its tests may use the testkit, which is built for exactly that.
    files: ['packages/core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '@tokenwarden/server*',
            '@tokenwarden/client*',
            '@tokenwarden/temporal*',
            '@tokenwarden/testkit*',
          ],
        },
      ],
    },
  },
  {
    // The SDK runs in workers that install nothing else: it imports no other package of ours.
    files: ['packages/client/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['@tokenwarden/*', '../../*/src/*'] }],
    },
  },
  {
    // Temporal workers talk to Tokenwarden through the SDK only, never to the engine or a store.
    files: ['packages/temporal/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '@tokenwarden/core*',
            '@tokenwarden/server*',
            '@tokenwarden/testkit*',
            '../../*/src/*',
          ],
        },
      ],
    },
  },
  {
    // The server is built on core; tests and benches bring the testkit, the server never does.
    files: ['packages/server/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '@tokenwarden/testkit*',
            '@tokenwarden/temporal*',
            '@tokenwarden/*/src/*',
            '../../*/src/*',
          ],
        },
      ],
      // no-restricted-imports does not see import() or import types: the same boundary for them.
      'no-restricted-syntax': [
        'error',
        ...[
          'ImportExpression[source.value=/^@tokenwarden.(testkit|temporal)/]',
          'TSImportType[argument.literal.value=/^@tokenwarden.(testkit|temporal)/]',
        ].map((selector) => ({
          selector,
          message: 'The server never loads the testkit or the Temporal helpers.',
        })),
      ],
    },
  },
  {
    // `tokenwarden dev-provider` runs the testkit's test provider: the one exception, loaded on
    // demand as an optional peer dependency so that a production install needs no test tooling.
    files: ['packages/server/src/cli/dev-provider.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // Reaching into another package's src/ bypasses its public index.
    // (The package sources above have their own, stricter rule.)
    files: ['**/*.ts'],
    ignores: [
      'packages/core/src/**/*.ts',
      'packages/client/src/**/*.ts',
      'packages/temporal/src/**/*.ts',
      'packages/server/src/**/*.ts',
    ],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['@tokenwarden/*/src/*', '../../*/src/*'] }],
    },
  },
  {
    // No import cycles, type-only ones included (see the rule's file for why).
    files: ['**/*.ts'],
    plugins: { tokenwarden },
    rules: { 'tokenwarden/no-import-cycle': 'error' },
  },
  // Formatting is prettier's job; turn off the rules that would disagree with it.
  prettier,
);
