/**
 * Reserved words of the supported languages. They tokenize like identifiers but name nothing, so
 * the views skip them as queries ("which definition does `const` depend on?" is no question).
 */
const KEYWORDS = new Set(
  (
    'abstract as async await break case catch class const continue debugger default def del delete do elif else enum export extends ' +
    'false final finally for from func function go goto if impl implements import in instanceof interface is lambda let loop match mod ' +
    'module mut namespace new nil None nonlocal not null of or and package pass private protected pub public raise readonly return ' +
    'static struct super switch this throw throws true True False try type typeof undefined union unsafe use using var void where while ' +
    'with yield fn self Self crate extern ref move dyn trait defer chan select fallthrough range map interface var int float bool string ' +
    'char double long short unsigned signed sizeof template typename virtual override sealed internal out params base object decimal ' +
    'byte sbyte uint ulong ushort get set value partial event delegate operator implicit explicit checked unchecked fixed lock ' +
    'global assert print'
  ).split(' '),
);

export function isKeyword(name: string): boolean {
  return KEYWORDS.has(name);
}
