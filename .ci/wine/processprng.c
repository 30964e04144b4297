/*
 * bcryptprimitives.dll for Wine 8: Rust's standard library on Windows imports
 * ProcessPrng from it, and Wine 8 does not ship the DLL, so every Rust program
 * fails to start (status c0000135). This one export fills the buffer from
 * RtlGenRandom (SystemFunction036 in advapi32), as the real one fills it from
 * the system RNG. Built by .ci/wine/setup.sh with x86_64-w64-mingw32-gcc -shared.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: fill large buffers in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
