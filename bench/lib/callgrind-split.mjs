/**
 * Splits a callgrind dump's instructions into the request path, garbage
 * collection and JIT compilation, by the self cost of each function
 * (`callgrind_annotate --inclusive=no`). V8's collector and optimizing
 * compilers run in bursts (a major GC or a TurboFan job lands in one
 * measured round and not the next), which moves one round's total by
 * hundreds of k instructions per request; the request path without them is
 * steady. GC is still a real cost of allocating: it is reported beside the
 * path, summed over all rounds, not dropped.
 */
import { execFileSync } from 'node:child_process';

/** V8's optimizing and baseline compilers (Turbofan, Turboshaft, Maglev, Sparkplug) and their job machinery. */
const JIT = /v8::internal::(compiler|maglev|baseline|turboshaft|wasm)::|v8::internal::(OptimizingCompileDispatcher|Compiler|TurbofanCompilationJob|OptimizedCompilationJob|CompilationJob|BytecodeGenerator|interpreter::|Parser|PreParser|Scanner|AstValueFactory|Zone|RelocIterator|IdentityMap|RootIndexMap|Assembler|MacroAssembler|CodeDesc|Deoptimizer|SourcePosition)/;

/** V8's and cppgc's garbage collector: marking, sweeping, scavenging, evacuation, page and slot bookkeeping. */
const GC =
  /v8::internal::(Heap|Mark|MinorMark|Concurrent(Marking|Marker)|IncrementalMarking|Scaveng|Sweep|Evacuat|GCTracer|MemoryAllocator|PagedSpace|PagedNewSpace|NewSpace|SemiSpace|LargeObjectSpace|MemoryChunk|BasicMemoryChunk|MutablePageMetadata|PageMetadata|RememberedSet|SlotSet|TypedSlotSet|LocalHeap|Safepoint|FreeList|Page::|Marking|BodyDescriptorBase::Iterate|RootsReferencesExtractor|ObjectStatsCollector|ArrayBufferSweeper|ExternalPointerTable|StringForwardingTable|WeakObjects|ReadOnlySpace|FullEvacuator|RecordMigratedSlotVisitor|PointersUpdating|UpdateTypedSlot|.*Visitor.*Visit)|\(anonymous namespace\)::IterateObjectCache|heap::base::|cppgc::|MemoryChunk\*|v8::internal::.*::Iterate(Roots|ObjectCache|Pointers)/;

/** `{ total, gc, jit, path }` instructions of one dump file. */
export function splitDump(file) {
  const text = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  let total = 0;
  let gc = 0;
  let jit = 0;
  let listed = 0;
  for (const line of text.split('\n')) {
    const program = /^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/.exec(line);
    if (program) {
      total = Number(program[1].replaceAll(',', ''));
      continue;
    }
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!match) continue;
    const cost = Number(match[1].replaceAll(',', ''));
    listed += cost;
    if (JIT.test(match[2])) jit += cost;
    else if (GC.test(match[2])) gc += cost;
  }
  if (total === 0) total = listed;
  return { total, gc, jit, path: total - gc - jit };
}
