/** The terminal: the public surface. */
export { builtinCommands } from "./Commands.ts"
export { type CommandContext, makeCommandTable, type TerminalCommand } from "./CommandTable.ts"
export { readLoop, Terminal, TERMINAL_PROCESS } from "./Terminal.ts"
export { TerminalPrintout } from "./TerminalPrintout.ts"
export { ask, interactive, NoTerminal } from "./Prompt.ts"
