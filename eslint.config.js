import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**'] },
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
    // Reaching into another package's src/ bypasses its public index.
    files: ['**/*.ts'],
    ignores: ['packages/core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['@tokenwarden/*/src/*', '../../*/src/*'] }],
    },
  },
  // Formatting is prettier's job; turn off the rules that would disagree with it.
  prettier,
);
