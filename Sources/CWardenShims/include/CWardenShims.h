#ifndef CWARDEN_SHIMS_H
#define CWARDEN_SHIMS_H

#include <sys/fsuid.h>

/* setfsuid/setfsgid change only the calling thread's file-system identity; Swift does not import <sys/fsuid.h>. */
static inline int warden_setfsuid(unsigned int uid) { return setfsuid(uid); }
static inline int warden_setfsgid(unsigned int gid) { return setfsgid(gid); }

#endif
