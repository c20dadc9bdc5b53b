/*
 * rg/container_of.h: the one container_of of ringgate's processes.
 *
 * Intrusive lists and queues (dbproxy's work queues, the gateway's idle
 * list) embed their node in the object; RG_CONTAINER_OF(node, type, member)
 * gets the object back from a pointer to its member. libnet has its own
 * (NET__CONTAINER_OF), as it depends on nothing of ringgate's.
 */
#ifndef RG_CONTAINER_OF_H
#define RG_CONTAINER_OF_H

#include <stddef.h>

#define RG_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif /* RG_CONTAINER_OF_H */
