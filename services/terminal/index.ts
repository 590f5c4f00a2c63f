/** The terminal: the public surface. */
export { fallbackCommands, verbosityCommand } from "./Commands.ts"
export { type CommandContext, makeCommandTable, type TerminalCommand } from "./CommandTable.ts"
export { NATIVE_TERMINAL_PROCESS, readLoop, Terminal, TERMINAL_PROCESS } from "./Terminal.ts"
export { TerminalConsole } from "./TerminalConsole.ts"
export { TerminalPrintout } from "./TerminalPrintout.ts"
export { ask, interactive, NoTerminal } from "./Prompt.ts"
